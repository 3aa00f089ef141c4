//! Text decoding for bundle members: UTF-8 (valid or not), UTF-16 with or
//! without a byte order mark, and line terminators of any platform.

use std::io::{self, Read};

use encoding_rs::{UTF_16BE, UTF_16LE};

/// The encoding a member's first bytes indicate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextEncoding {
    Utf8,
    Utf16Le,
    Utf16Be,
}

/// Guesses the encoding from a byte order mark or, without one, from the
/// pattern of NUL bytes that ASCII text has in UTF-16.
pub fn sniff_encoding(head: &[u8]) -> TextEncoding {
    if head.starts_with(&[0xFF, 0xFE]) {
        return TextEncoding::Utf16Le;
    }
    if head.starts_with(&[0xFE, 0xFF]) {
        return TextEncoding::Utf16Be;
    }
    let sample = &head[..head.len().min(4096) & !1];
    if sample.len() < 4 {
        return TextEncoding::Utf8;
    }
    let pairs = sample.len() / 2;
    let even_nuls = sample.iter().step_by(2).filter(|&&b| b == 0).count();
    let odd_nuls = sample
        .iter()
        .skip(1)
        .step_by(2)
        .filter(|&&b| b == 0)
        .count();
    // ASCII in UTF-16 puts a NUL in nearly every other byte; binary data and
    // UTF-8 text with stray NULs do not.
    if odd_nuls * 10 >= pairs * 7 && even_nuls * 10 < pairs {
        TextEncoding::Utf16Le
    } else if even_nuls * 10 >= pairs * 7 && odd_nuls * 10 < pairs {
        TextEncoding::Utf16Be
    } else {
        TextEncoding::Utf8
    }
}

/// Decodes UTF-16 bytes (a BOM, if present, is removed) into UTF-8 bytes.
/// Unpaired surrogates become U+FFFD.
pub fn decode_utf16(bytes: &[u8], encoding: TextEncoding) -> Vec<u8> {
    let codec = match encoding {
        TextEncoding::Utf16Be => UTF_16BE,
        _ => UTF_16LE,
    };
    let (text, _) = codec.decode_with_bom_removal(bytes);
    text.into_owned().into_bytes()
}

/// Bytes of UTF-16 input decoded per refill of a [`Utf16Reader`].
const UTF16_CHUNK: usize = 64 * 1024;

/// A reader that decodes UTF-16 from `inner` into UTF-8 as it is read, so a
/// large member never has to be held in memory whole. Like
/// [`decode_utf16`], it drops a BOM and turns unpaired surrogates into
/// U+FFFD.
pub struct Utf16Reader<R> {
    inner: R,
    decoder: encoding_rs::Decoder,
    input: Vec<u8>,
    output: Vec<u8>,
    output_start: usize,
    finished: bool,
}

impl<R: Read> Utf16Reader<R> {
    pub fn new(inner: R, encoding: TextEncoding) -> Utf16Reader<R> {
        let codec = match encoding {
            TextEncoding::Utf16Be => UTF_16BE,
            _ => UTF_16LE,
        };
        Utf16Reader {
            inner,
            decoder: codec.new_decoder_with_bom_removal(),
            input: vec![0; UTF16_CHUNK],
            output: Vec::new(),
            output_start: 0,
            finished: false,
        }
    }

    /// Decodes the next chunk of input into `self.output`.
    fn refill(&mut self) -> io::Result<()> {
        let read = loop {
            match self.inner.read(&mut self.input) {
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                result => break result?,
            }
        };
        let last = read == 0;
        // Enough room for any input, so one call consumes it all.
        let room = self
            .decoder
            .max_utf8_buffer_length(read)
            .unwrap_or(read.saturating_mul(3).saturating_add(16));
        self.output.clear();
        self.output.resize(room, 0);
        self.output_start = 0;
        let (_, _, written, _) =
            self.decoder
                .decode_to_utf8(&self.input[..read], &mut self.output, last);
        self.output.truncate(written);
        self.finished = last;
        Ok(())
    }
}

impl<R: Read> Read for Utf16Reader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.output_start == self.output.len() {
            if self.finished || out.is_empty() {
                return Ok(0);
            }
            self.refill()?;
        }
        let pending = &self.output[self.output_start..];
        let count = pending.len().min(out.len());
        out[..count].copy_from_slice(&pending[..count]);
        self.output_start += count;
        Ok(count)
    }
}

/// Decodes a whole small document (an XML file, a transcript) to text,
/// whatever its encoding.
pub fn decode_document(bytes: &[u8]) -> String {
    match sniff_encoding(bytes) {
        TextEncoding::Utf8 => {
            let bytes = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(bytes);
            String::from_utf8_lossy(bytes).into_owned()
        }
        encoding => String::from_utf8_lossy(&decode_utf16(bytes, encoding)).into_owned(),
    }
}

/// Picks the line terminator: `\n` (which also covers CRLF), or `\r` for
/// text that uses lone carriage returns only.
pub fn line_terminator(head: &[u8]) -> u8 {
    if memchr::memchr(b'\n', head).is_none() && memchr::memchr(b'\r', head).is_some() {
        b'\r'
    } else {
        b'\n'
    }
}

/// Returns a line as text: invalid UTF-8 replaced, the trailing CR and any
/// UTF-8 BOM dropped, and the result cut to `max_chars` characters.
pub fn line_text(bytes: &[u8], max_chars: usize) -> String {
    let bytes = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(bytes);
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    let limit = bytes.len().min(max_chars.saturating_mul(4));
    let text = String::from_utf8_lossy(&bytes[..limit]);
    let mut out: String = text.chars().take(max_chars).collect();
    if out.len() < text.len() || limit < bytes.len() {
        out.push('…');
    }
    out.replace('\0', "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniff_finds_utf16_with_and_without_bom() {
        let mut with_bom = vec![0xFF, 0xFE];
        with_bom.extend("curl: (6)".encode_utf16().flat_map(u16::to_le_bytes));
        assert_eq!(sniff_encoding(&with_bom), TextEncoding::Utf16Le);

        let without: Vec<u8> = "Name Type TTL"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        assert_eq!(sniff_encoding(&without), TextEncoding::Utf16Le);

        let big: Vec<u8> = "Name Type TTL"
            .encode_utf16()
            .flat_map(u16::to_be_bytes)
            .collect();
        assert_eq!(sniff_encoding(&big), TextEncoding::Utf16Be);

        assert_eq!(sniff_encoding(b"plain ascii text"), TextEncoding::Utf8);
    }

    #[test]
    fn decode_drops_bom() {
        let mut bytes = vec![0xFF, 0xFE];
        bytes.extend("ok".encode_utf16().flat_map(u16::to_le_bytes));
        assert_eq!(decode_utf16(&bytes, TextEncoding::Utf16Le), b"ok");
    }

    #[test]
    fn line_text_cuts_and_cleans() {
        assert_eq!(line_text(b"abc\r", 10), "abc");
        assert_eq!(line_text(b"abcdef", 3), "abc…");
        assert_eq!(line_text(b"a\xFFb", 10), "a\u{FFFD}b");
        assert_eq!(line_text(b"a\0b", 10), "ab");
    }

    #[test]
    fn lone_cr_files_split_on_cr() {
        assert_eq!(line_terminator(b"one\rtwo\r"), b'\r');
        assert_eq!(line_terminator(b"one\r\ntwo\r\n"), b'\n');
    }
}
