//! Server-sent events, as both providers stream them.

use std::io::{self, BufRead, Read};

/// One event: its `event:` name, if any, and its `data:` lines joined by newlines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SseEvent {
    pub(crate) event: Option<String>,
    pub(crate) data: String,
}

/// Reads events from a byte stream: skips comment lines (`: keep-alive`), accepts `data:`
/// with or without a space, joins multi-line data, ignores `id:` and `retry:`.
pub(crate) struct SseReader<R> {
    reader: R,
    line: Vec<u8>,
}

impl<R: BufRead> SseReader<R> {
    pub(crate) fn new(reader: R) -> SseReader<R> {
        SseReader {
            reader,
            line: Vec::new(),
        }
    }

    /// Reads what follows the last event (at most 64 KiB) so the connection ends cleanly
    /// and can be reused; errors are ignored, the events are all in.
    pub(crate) fn drain(mut self) {
        let _ = io::copy(&mut (&mut self.reader).take(64 * 1024), &mut io::sink());
    }

    /// The next event, or `None` at the end of the stream.
    pub(crate) fn next_event(&mut self) -> io::Result<Option<SseEvent>> {
        let mut event: Option<String> = None;
        let mut data: Option<String> = None;
        loop {
            self.line.clear();
            let read = self.reader.read_until(b'\n', &mut self.line)?;
            if read == 0 {
                // End of stream: an event without its blank line still counts.
                return Ok(data.map(|data| SseEvent { event, data }));
            }
            let line = String::from_utf8_lossy(&self.line);
            let line = line.trim_end_matches(['\n', '\r']);
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
                None => (line, ""),
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
    fn joins_multi_line_data_and_keeps_a_last_event_without_blank_line() {
        assert_eq!(
            events("data: {\"a\":\ndata: 1}\n\nid: 7\ndata: tail"),
            vec![data("{\"a\":\n1}"), data("tail")]
        );
    }
}
