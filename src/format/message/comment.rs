//! Object Comment message, type 0x000D (spec IV.A.2.n): a NUL-terminated
//! ASCII comment.

use crate::format::{Result, Sizes};

/// Object Comment message (spec IV.A.2.n).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Comment {
    /// "Comment": the text up to the first NUL (or the whole body if there is
    /// none), non-UTF-8 bytes replaced.
    pub text: String,
}

/// Parses a Comment message body. A missing terminator is tolerated.
pub fn parse(body: &[u8], _at: u64, _sizes: Sizes) -> Result<Comment> {
    let end = body.iter().position(|&b| b == 0).unwrap_or(body.len());
    let text = String::from_utf8_lossy(body.get(..end).unwrap_or(body)).into_owned();
    Ok(Comment { text })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminated_unterminated_and_empty() {
        let s = Sizes::DEFAULT;
        assert_eq!(parse(b"hello\0\0\0", 0, s).unwrap().text, "hello");
        assert_eq!(parse(b"abc", 0, s).unwrap().text, "abc");
        assert_eq!(parse(b"", 0, s).unwrap().text, "");
        assert_eq!(parse(b"\xFF\0", 0, s).unwrap().text, "\u{FFFD}");
    }
}
