//! A command's output, kept bounded whatever it writes: the first bytes in a head buffer,
//! the last in a ring, and a count of the characters in between.

use super::fs::thousands;

/// Output captured as it streams in; memory stays at most `head + tail` bytes.
#[derive(Debug)]
pub(crate) struct Capture {
    head: Vec<u8>,
    head_limit: usize,
    /// The last bytes seen after the head filled: at most `2 * tail_limit`, of which the
    /// last `tail_limit` count (the front is dropped in one move when it doubles, so each
    /// byte is copied a bounded number of times).
    tail: Vec<u8>,
    tail_limit: usize,
    /// Bytes dropped between head and tail (neither kept).
    dropped: u64,
    /// Characters seen in all (UTF-8 lead bytes; an invalid byte counts as one).
    chars: u64,
}

impl Capture {
    /// Keeps enough bytes for `cap` characters: half from the start, half from the end (a
    /// character is at most 4 bytes).
    pub(crate) fn new(cap: usize) -> Capture {
        let head_chars = cap / 2;
        let tail_chars = cap - head_chars;
        Capture {
            head: Vec::new(),
            head_limit: head_chars * 4,
            tail: Vec::new(),
            tail_limit: tail_chars * 4,
            dropped: 0,
            chars: 0,
        }
    }

    /// Adds the next bytes of output.
    pub(crate) fn push(&mut self, mut bytes: &[u8]) {
        self.chars += bytes.iter().filter(|byte| (**byte & 0xC0) != 0x80).count() as u64;
        let room = self.head_limit - self.head.len();
        if room > 0 {
            let taken = room.min(bytes.len());
            self.head.extend_from_slice(&bytes[..taken]);
            bytes = &bytes[taken..];
        }
        if bytes.len() >= self.tail_limit {
            self.dropped += (self.tail.len() + bytes.len() - self.tail_limit) as u64;
            self.tail.clear();
            self.tail
                .extend_from_slice(&bytes[bytes.len() - self.tail_limit..]);
            return;
        }
        self.tail.extend_from_slice(bytes);
        if self.tail.len() > 2 * self.tail_limit {
            let excess = self.tail.len() - self.tail_limit;
            self.tail.drain(..excess);
            self.dropped += excess as u64;
        }
    }

    /// Whether nothing was written.
    pub(crate) fn is_empty(&self) -> bool {
        self.head.is_empty()
    }

    /// The text (lossy UTF-8), at most `cap` characters: all of it, or its first and last
    /// halves around a line saying how many characters were cut.
    pub(crate) fn text(&self, cap: usize) -> String {
        // The bytes beyond the last `tail_limit` of the ring are dropped too.
        let extra = self.tail.len().saturating_sub(self.tail_limit);
        let tail = &self.tail[extra..];
        if self.dropped == 0 && extra == 0 {
            let mut bytes = Vec::with_capacity(self.head.len() + tail.len());
            bytes.extend_from_slice(&self.head);
            bytes.extend_from_slice(tail);
            return cap_text(&String::from_utf8_lossy(&bytes), cap);
        }
        let head_chars = cap / 2;
        let tail_chars = cap - head_chars;
        let head = String::from_utf8_lossy(&self.head);
        let head: String = head.chars().take(head_chars).collect();
        let tail = String::from_utf8_lossy(tail);
        let tail_count = tail.chars().count();
        let tail: String = tail
            .chars()
            .skip(tail_count.saturating_sub(tail_chars))
            .collect();
        let cut = self.chars.saturating_sub((head_chars + tail_chars) as u64);
        join_cut(&head, cut, &tail)
    }
}

/// `text` if it has at most `cap` characters, else its first and last halves around a note.
pub(crate) fn cap_text(text: &str, cap: usize) -> String {
    let total = text.chars().count();
    if total <= cap {
        return text.to_string();
    }
    let head_chars = cap / 2;
    let tail_chars = cap - head_chars;
    let head_end = text
        .char_indices()
        .nth(head_chars)
        .map_or(text.len(), |(index, _)| index);
    let tail_start = text
        .char_indices()
        .nth(total - tail_chars)
        .map_or(text.len(), |(index, _)| index);
    join_cut(
        &text[..head_end],
        (total - head_chars - tail_chars) as u64,
        &text[tail_start..],
    )
}

fn join_cut(head: &str, cut: u64, tail: &str) -> String {
    let mut text = String::with_capacity(head.len() + tail.len() + 64);
    text.push_str(head);
    if !head.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&format!("[... {} characters cut ...]\n", thousands(cut)));
    text.push_str(tail);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn captured(chunks: &[&[u8]], cap: usize) -> String {
        let mut capture = Capture::new(cap);
        for chunk in chunks {
            capture.push(chunk);
        }
        capture.text(cap)
    }

    #[test]
    fn short_text_is_kept_whole() {
        assert_eq!(cap_text("hello", 5), "hello");
        assert_eq!(captured(&[b"hel", b"lo"], 5), "hello");
    }

    #[test]
    fn long_text_keeps_head_and_tail() {
        let text = format!("{}{}", "a".repeat(10), "b".repeat(10));
        assert_eq!(cap_text(&text, 6), "aaa\n[... 14 characters cut ...]\nbbb");
        let wide = "é".repeat(20);
        let capped = cap_text(&wide, 4);
        assert!(capped.starts_with("éé\n[... 16 characters cut ...]\néé"));
    }

    #[test]
    fn streamed_output_keeps_head_and_tail_in_bounded_memory() {
        let h = "h".repeat(1000);
        let t = "t".repeat(1000);
        // In one chunk and in many small ones, the same answer.
        assert_eq!(
            captured(&[format!("{h}{t}").as_bytes()], 10),
            "hhhhh\n[... 1,990 characters cut ...]\nttttt"
        );
        let mut capture = Capture::new(10);
        for byte in format!("{h}{t}").bytes() {
            capture.push(&[byte]);
        }
        assert!(capture.head.len() <= 20 && capture.tail.len() <= 40);
        assert_eq!(
            capture.text(10),
            "hhhhh\n[... 1,990 characters cut ...]\nttttt"
        );
        // Multi-byte characters are counted once each, also across chunk ends.
        let wide = "é".repeat(100);
        let (first, second) = wide.as_bytes().split_at(51);
        assert_eq!(
            captured(&[first, second], 4),
            "éé\n[... 96 characters cut ...]\néé"
        );
    }
}
