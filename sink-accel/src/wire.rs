//! A minimal protobuf wire-format reader and a validator for the OTLP trace request schema.
//!
//! The validator accepts exactly what the upb-based official Python decoder accepts:
//! varints of at most 10 bytes (bits past 64 dropped), tags of at most 5 bytes and 32 bits,
//! field number 0 and wire types 6/7 rejected, lengths of at most 5 bytes that fit the buffer,
//! string fields checked as UTF-8, known fields seen with another wire type kept as unknown,
//! unknown groups skipped (with matching end tags), and at most 100 nested messages/groups.

use std::fmt;

/// Nested messages and groups the decoder enters at most (upb's default limit).
pub const MAX_DEPTH: u32 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeError(pub &'static str);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

pub type Res<T> = Result<T, DecodeError>;

pub const TRUNCATED: DecodeError = DecodeError("truncated message");
pub const BAD_VARINT: DecodeError = DecodeError("malformed varint");
pub const BAD_TAG: DecodeError = DecodeError("invalid tag");
pub const BAD_LENGTH: DecodeError = DecodeError("invalid length");
pub const BAD_GROUP: DecodeError = DecodeError("unbalanced group");
pub const BAD_UTF8: DecodeError = DecodeError("string field had bad UTF-8");
pub const TOO_DEEP: DecodeError = DecodeError("message nested too deeply");

/// One field's value as read from the wire.
#[derive(Clone, Copy)]
pub enum Val<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32,
    Bytes(&'a [u8]),
    Group,
}

pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    #[inline]
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    #[inline]
    pub fn eof(&self) -> bool {
        self.pos >= self.buf.len()
    }

    #[inline(always)]
    fn byte(&mut self) -> Res<u8> {
        match self.buf.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b)
            }
            None => Err(TRUNCATED),
        }
    }

    #[inline(always)]
    pub fn varint(&mut self) -> Res<u64> {
        let b = self.byte()?;
        if b < 0x80 {
            return Ok(b as u64);
        }
        let mut result = (b & 0x7f) as u64;
        for i in 1..10 {
            let b = self.byte()?;
            result |= ((b & 0x7f) as u64) << (7 * i);
            if b < 0x80 {
                return Ok(result);
            }
        }
        Err(BAD_VARINT)
    }

    /// (field number, wire type) of the next field.
    #[inline(always)]
    pub fn tag(&mut self) -> Res<(u32, u8)> {
        let mut result: u64 = 0;
        for i in 0..5 {
            let b = self.byte()?;
            result |= ((b & 0x7f) as u64) << (7 * i);
            if b < 0x80 {
                if result > u32::MAX as u64 {
                    return Err(BAD_TAG);
                }
                let field = (result >> 3) as u32;
                let wire_type = (result & 7) as u8;
                if field == 0 || wire_type > 5 {
                    return Err(BAD_TAG);
                }
                return Ok((field, wire_type));
            }
        }
        Err(BAD_TAG)
    }

    #[inline(always)]
    fn take(&mut self, n: usize) -> Res<&'a [u8]> {
        if self.buf.len() - self.pos < n {
            return Err(TRUNCATED);
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    #[inline(always)]
    fn length_delimited(&mut self) -> Res<&'a [u8]> {
        let mut size: u64 = 0;
        let mut i = 0;
        loop {
            let b = self.byte()?;
            size |= ((b & 0x7f) as u64) << (7 * i);
            if b < 0x80 {
                break;
            }
            i += 1;
            if i == 5 {
                return Err(BAD_LENGTH);
            }
        }
        if size > (self.buf.len() - self.pos) as u64 {
            return Err(BAD_LENGTH);
        }
        self.take(size as usize)
    }

    #[inline]
    fn fixed64(&mut self) -> Res<u64> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into().unwrap()))
    }

    /// Skip the rest of a group opened by `field` (its start tag already read).
    fn skip_group(&mut self, field: u32, depth: u32) -> Res<()> {
        if depth > MAX_DEPTH {
            return Err(TOO_DEEP);
        }
        loop {
            if self.eof() {
                return Err(BAD_GROUP);
            }
            let (f, wt) = self.tag()?;
            match wt {
                0 => {
                    self.varint()?;
                }
                1 => {
                    self.take(8)?;
                }
                2 => {
                    self.length_delimited()?;
                }
                3 => self.skip_group(f, depth + 1)?,
                4 => {
                    return if f == field { Ok(()) } else { Err(BAD_GROUP) };
                }
                5 => {
                    self.take(4)?;
                }
                _ => return Err(BAD_TAG),
            }
        }
    }

    /// The next field, or None at the end. Groups are skipped whole; `depth` is this message's.
    #[inline(always)]
    pub fn field(&mut self, depth: u32) -> Res<Option<(u32, Val<'a>)>> {
        if self.eof() {
            return Ok(None);
        }
        let (field, wt) = self.tag()?;
        let val = match wt {
            0 => Val::Varint(self.varint()?),
            1 => Val::Fixed64(self.fixed64()?),
            2 => Val::Bytes(self.length_delimited()?),
            3 => {
                self.skip_group(field, depth + 1)?;
                Val::Group
            }
            5 => {
                self.take(4)?;
                Val::Fixed32
            }
            _ => return Err(BAD_GROUP), // an end-group tag with no group open
        };
        Ok(Some((field, val)))
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Msg {
    Request,
    ResourceSpans,
    Resource,
    ScopeSpans,
    Scope,
    Span,
    Event,
    Link,
    Status,
    KeyValue,
    AnyValue,
    ArrayValue,
    KeyValueList,
    EntityRef,
}

/// What a length-delimited field of a message holds (other wire types need no checking).
#[derive(Clone, Copy)]
enum Ld {
    Str,
    Bytes,
    Sub(Msg),
    NotLd,
}

#[inline]
fn length_delimited_kind(msg: Msg, field: u32) -> Ld {
    use Ld::*;
    match (msg, field) {
        (Msg::Request, 1) => Sub(Msg::ResourceSpans),
        (Msg::ResourceSpans, 1) => Sub(Msg::Resource),
        (Msg::ResourceSpans, 2) => Sub(Msg::ScopeSpans),
        (Msg::ResourceSpans, 3) => Str,
        (Msg::Resource, 1) => Sub(Msg::KeyValue),
        (Msg::Resource, 3) => Sub(Msg::EntityRef),
        (Msg::ScopeSpans, 1) => Sub(Msg::Scope),
        (Msg::ScopeSpans, 2) => Sub(Msg::Span),
        (Msg::ScopeSpans, 3) => Str,
        (Msg::Scope, 1) | (Msg::Scope, 2) => Str,
        (Msg::Scope, 3) => Sub(Msg::KeyValue),
        (Msg::Span, 1) | (Msg::Span, 2) | (Msg::Span, 4) => Bytes,
        (Msg::Span, 3) | (Msg::Span, 5) => Str,
        (Msg::Span, 9) => Sub(Msg::KeyValue),
        (Msg::Span, 11) => Sub(Msg::Event),
        (Msg::Span, 13) => Sub(Msg::Link),
        (Msg::Span, 15) => Sub(Msg::Status),
        (Msg::Event, 2) => Str,
        (Msg::Event, 3) => Sub(Msg::KeyValue),
        (Msg::Link, 1) | (Msg::Link, 2) => Bytes,
        (Msg::Link, 3) => Str,
        (Msg::Link, 4) => Sub(Msg::KeyValue),
        (Msg::Status, 2) => Str,
        (Msg::KeyValue, 1) => Str,
        (Msg::KeyValue, 2) => Sub(Msg::AnyValue),
        (Msg::AnyValue, 1) => Str,
        (Msg::AnyValue, 5) => Sub(Msg::ArrayValue),
        (Msg::AnyValue, 6) => Sub(Msg::KeyValueList),
        (Msg::AnyValue, 7) => Bytes,
        (Msg::ArrayValue, 1) => Sub(Msg::AnyValue),
        (Msg::KeyValueList, 1) => Sub(Msg::KeyValue),
        (Msg::EntityRef, 1..=4) => Str,
        _ => NotLd,
    }
}

/// Check that `buf` decodes as `msg` (at nesting `depth`) the way the official decoder does.
pub fn validate(buf: &[u8], msg: Msg, depth: u32) -> Res<()> {
    let mut r = Reader::new(buf);
    while let Some((field, val)) = r.field(depth)? {
        if let Val::Bytes(data) = val {
            match length_delimited_kind(msg, field) {
                Ld::Str => {
                    if std::str::from_utf8(data).is_err() {
                        return Err(BAD_UTF8);
                    }
                }
                Ld::Sub(sub) => {
                    if depth + 1 > MAX_DEPTH {
                        return Err(TOO_DEEP);
                    }
                    validate(data, sub, depth + 1)?;
                }
                Ld::Bytes | Ld::NotLd => {}
            }
        }
    }
    Ok(())
}
