//! Server-sent events, as both providers stream them.

use std::io::{self, BufRead, Read};

/// One event: its `event:` name, if any, and its `data:` lines joined by newlines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SseEvent {
    pub(crate) event: Option<String>,
    pub(crate) data: String,
}

/// Reads events from a byte stream by the WHATWG rules (the HTML standard's "event stream
/// interpretation"): a leading BOM is skipped; lines end with CRLF, LF or a lone CR;
/// comment lines (`: keep-alive`) are skipped; `data:` with or without a space; multi-line
/// data is joined; `id:` and `retry:` are ignored. An event is dispatched only by the blank
/// line after it: at the end of the stream an unterminated event is discarded, so a cut
/// stream reads as cut (and is retried) rather than as half an event of malformed JSON.
pub(crate) struct SseReader<R> {
    reader: R,
    line: Vec<u8>,
    /// Whether the start of the stream (and a BOM there) is behind us.
    started: bool,
    /// The last line ended with a CR, so a LF that follows belongs to it.
    after_cr: bool,
}

impl<R: BufRead> SseReader<R> {
    pub(crate) fn new(reader: R) -> SseReader<R> {
        SseReader {
            reader,
            line: Vec::new(),
            started: false,
            after_cr: false,
        }
    }

    /// Reads what follows the last event (at most 64 KiB) so the connection ends cleanly
    /// and can be reused; errors are ignored, the events are all in.
    pub(crate) fn drain(mut self) {
        let _ = io::copy(&mut (&mut self.reader).take(64 * 1024), &mut io::sink());
    }

    /// Reads one line into `self.line` without its ending; `false` at the end of the
    /// stream (a last line without an ending still counts as a line).
    fn read_line(&mut self) -> io::Result<bool> {
        self.line.clear();
        let mut any = false;
        loop {
            let buffer = match self.reader.fill_buf() {
                Ok(buffer) => buffer,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error),
            };
            if buffer.is_empty() {
                return Ok(any);
            }
            if self.after_cr {
                self.after_cr = false;
                if buffer[0] == b'\n' {
                    self.reader.consume(1);
                    continue;
                }
            }
            if !self.started {
                // The BOM is matched a byte at a time, so one split across reads is skipped
                // too; bytes that turn out not to be a BOM stay in the line as data.
                const BOM: &[u8] = b"\xEF\xBB\xBF";
                let seen = self.line.len();
                if seen < BOM.len() && buffer[0] == BOM[seen] {
                    self.line.push(buffer[0]);
                    self.reader.consume(1);
                    if self.line.len() == BOM.len() {
                        self.line.clear();
                        self.started = true;
                    }
                    continue;
                }
                self.started = true;
            }
            any = true;
            match buffer
                .iter()
                .position(|&byte| byte == b'\n' || byte == b'\r')
            {
                Some(end) => {
                    self.after_cr = buffer[end] == b'\r';
                    self.line.extend_from_slice(&buffer[..end]);
                    self.reader.consume(end + 1);
                    return Ok(true);
                }
                None => {
                    let length = buffer.len();
                    self.line.extend_from_slice(buffer);
                    self.reader.consume(length);
                }
            }
        }
    }

    /// The next event, or `None` at the end of the stream.
    pub(crate) fn next_event(&mut self) -> io::Result<Option<SseEvent>> {
        let mut event: Option<String> = None;
        let mut data: Option<String> = None;
        loop {
            if !self.read_line()? {
                // End of stream: an event without its blank line is discarded.
                return Ok(None);
            }
            let line = String::from_utf8_lossy(&self.line);
            if line.is_empty() {
                if let Some(data) = data {
                    return Ok(Some(SseEvent { event, data }));
                }
                event = None; // an event name without data dispatches nothing
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = match line.split_once(':') {
                Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
                None => (line.as_ref(), ""),
            };
            match field {
                "event" => event = Some(value.to_string()),
                "data" => match &mut data {
                    Some(data) => {
                        data.push('\n');
                        data.push_str(value);
                    }
                    None => data = Some(value.to_string()),
                },
                _ => {} // id, retry, and anything unknown
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(text: &str) -> Vec<SseEvent> {
        let mut reader = SseReader::new(text.as_bytes());
        let mut events = Vec::new();
        while let Some(event) = reader.next_event().unwrap() {
            events.push(event);
        }
        events
    }

    fn data(data: &str) -> SseEvent {
        SseEvent {
            event: None,
            data: data.into(),
        }
    }

    #[test]
    fn parses_named_events_comments_and_spaceless_data() {
        let text = ": OPENROUTER PROCESSING\n\nevent: ping\ndata: {\"type\": \"ping\"}\n\n\
                    data:{\"a\":1}\r\n\r\ndata: [DONE]\n\n";
        assert_eq!(
            events(text),
            vec![
                SseEvent {
                    event: Some("ping".into()),
                    data: "{\"type\": \"ping\"}".into()
                },
                data("{\"a\":1}"),
                data("[DONE]"),
            ]
        );
    }

    #[test]
    fn joins_multi_line_data_and_discards_a_last_event_without_blank_line() {
        assert_eq!(
            events("data: {\"a\":\ndata: 1}\n\nid: 7\ndata: {\"cut"),
            vec![data("{\"a\":\n1}")]
        );
    }

    #[test]
    fn a_bom_cr_only_line_ends_and_empty_data_follow_the_whatwg_rules() {
        assert_eq!(
            events("\u{FEFF}data: a\r\rdata:\r\n\r\ndata: b\n\n"),
            vec![data("a"), data(""), data("b")]
        );
        // A BOM in the middle of a stream is data, not skipped.
        assert_eq!(events("data: x\u{FEFF}\n\n"), vec![data("x\u{FEFF}")]);
    }

    #[test]
    fn a_bom_split_across_reads_is_still_skipped() {
        let bytes = b"\xEF\xBB\xBFdata: a\n\n";
        let reader = io::BufReader::with_capacity(1, &bytes[..]);
        let mut reader = SseReader::new(reader);
        assert_eq!(reader.next_event().unwrap(), Some(data("a")));
        assert_eq!(reader.next_event().unwrap(), None);
    }
}
