//! OTLP ExportTraceServiceRequest bytes → RowBinary rows of `otel_traces`.
//!
//! Mirrors `shellspan_sink.rowbinary.encode_request` byte for byte. The body is validated whole
//! first (see `wire::validate`), then walked again, keeping protobuf's merge semantics: a singular
//! message field seen several times is the concatenation of its occurrences (`Parts`), scalars
//! keep their last value, and within AnyValue's oneof the last member seen wins.

use std::collections::{HashMap, HashSet};
use std::io::Write;

use crate::wire::{validate, DecodeError, Msg, Reader, Res, Val};

const SPAN_KINDS: [&[u8]; 6] = [
    b"Unspecified",
    b"Internal",
    b"Server",
    b"Client",
    b"Producer",
    b"Consumer",
];
const STATUS_CODES: [&[u8]; 3] = [b"Unset", b"Ok", b"Error"];
/// `shellspan.semconv.SINK_OWNED`: attributes only the sink writes (a client's own values under
/// these keys are dropped).
const SINK_OWNED: [&[u8]; 5] = [
    b"enduser.id",
    b"shell.auth.verified",
    b"shell.auth.host",
    b"shell.auth.key_id",
    b"shell.sink.received_time_unix_nano",
];
const NS_PER_DAY: u64 = 86_400 * 1_000_000_000;
const HEX: &[u8; 16] = b"0123456789abcdef";
const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
/// Above this many entries a map looks keys up through a hash index instead of a scan.
const LINEAR_LIMIT: usize = 24;

/// The occurrences of one singular message field, to be read as their concatenation.
#[derive(Default, Clone)]
struct Parts<'a> {
    first: Option<&'a [u8]>,
    rest: Vec<&'a [u8]>,
}

impl<'a> Parts<'a> {
    #[inline]
    fn one(data: &'a [u8]) -> Self {
        Parts { first: Some(data), rest: Vec::new() }
    }

    #[inline]
    fn push(&mut self, data: &'a [u8]) {
        if self.first.is_none() {
            self.first = Some(data);
        } else {
            self.rest.push(data);
        }
    }

    /// Call `f` with every field of every part, in wire order.
    #[inline]
    fn for_each(&self, mut f: impl FnMut(u32, Val<'a>) -> Res<()>) -> Res<()> {
        if let Some(first) = self.first {
            fields(first, &mut f)?;
            for part in &self.rest {
                fields(part, &mut f)?;
            }
        }
        Ok(())
    }
}

#[inline]
fn fields<'a>(data: &'a [u8], f: &mut impl FnMut(u32, Val<'a>) -> Res<()>) -> Res<()> {
    let mut r = Reader::new(data);
    // Depth limits were enforced by `validate`; 0 here never trips them again.
    while let Some((field, val)) = r.field(0)? {
        f(field, val)?;
    }
    Ok(())
}

/// The set member of an AnyValue.
enum Any<'a> {
    Unset,
    Str(&'a [u8]),
    Bool(bool),
    Int(i64),
    Double(f64),
    Array(Parts<'a>),
    KvList(Parts<'a>),
    Bytes(&'a [u8]),
    /// string_value_strindex: a member the reference renders as JSON null.
    Other,
}

fn decode_any<'a>(parts: &Parts<'a>) -> Res<Any<'a>> {
    let mut any = Any::Unset;
    parts.for_each(|field, val| {
        match (field, val) {
            (1, Val::Bytes(s)) => any = Any::Str(s),
            (2, Val::Varint(v)) => any = Any::Bool(v != 0),
            (3, Val::Varint(v)) => any = Any::Int(v as i64),
            (4, Val::Fixed64(v)) => any = Any::Double(f64::from_bits(v)),
            (5, Val::Bytes(s)) => match &mut any {
                Any::Array(p) => p.push(s),
                _ => any = Any::Array(Parts::one(s)),
            },
            (6, Val::Bytes(s)) => match &mut any {
                Any::KvList(p) => p.push(s),
                _ => any = Any::KvList(Parts::one(s)),
            },
            (7, Val::Bytes(s)) => any = Any::Bytes(s),
            (8, Val::Varint(_)) => any = Any::Other,
            _ => {}
        }
        Ok(())
    })?;
    Ok(any)
}

/// (key, value parts) of a KeyValue message.
#[inline]
fn decode_kv(data: &[u8]) -> Res<(&[u8], Parts<'_>)> {
    let mut key: &[u8] = b"";
    let mut value = Parts::default();
    fields(data, &mut |field, val| {
        match (field, val) {
            (1, Val::Bytes(s)) => key = s,
            (2, Val::Bytes(s)) => value.push(s),
            _ => {}
        }
        Ok(())
    })?;
    Ok((key, value))
}

#[inline]
fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

#[inline]
fn put_str(out: &mut Vec<u8>, data: &[u8]) {
    put_varint(out, data.len() as u64);
    out.extend_from_slice(data);
}

#[inline]
fn put_u64(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(&n.to_le_bytes());
}

#[inline]
fn put_hex(out: &mut Vec<u8>, data: &[u8]) {
    put_varint(out, 2 * data.len() as u64);
    for &b in data {
        out.push(HEX[(b >> 4) as usize]);
        out.push(HEX[(b & 15) as usize]);
    }
}

fn put_base64(out: &mut Vec<u8>, data: &[u8]) {
    let mut chunks = data.chunks_exact(3);
    for c in &mut chunks {
        let n = (c[0] as u32) << 16 | (c[1] as u32) << 8 | c[2] as u32;
        out.extend_from_slice(&[
            B64[(n >> 18) as usize & 63],
            B64[(n >> 12) as usize & 63],
            B64[(n >> 6) as usize & 63],
            B64[n as usize & 63],
        ]);
    }
    match *chunks.remainder() {
        [a] => {
            let n = (a as u32) << 16;
            out.extend_from_slice(&[B64[(n >> 18) as usize & 63], B64[(n >> 12) as usize & 63]]);
            out.extend_from_slice(b"==");
        }
        [a, b] => {
            let n = (a as u32) << 16 | (b as u32) << 8;
            out.extend_from_slice(&[
                B64[(n >> 18) as usize & 63],
                B64[(n >> 12) as usize & 63],
                B64[(n >> 6) as usize & 63],
                b'=',
            ]);
        }
        _ => {}
    }
}

/// Shortest round-trip digits in positional notation; NaN, +Inf, -Inf.
fn put_double(out: &mut Vec<u8>, d: f64) {
    if d.is_nan() {
        out.extend_from_slice(b"NaN");
    } else if d.is_infinite() {
        out.extend_from_slice(if d > 0.0 { b"+Inf" } else { b"-Inf" });
    } else {
        // Rust's Display for f64 is exactly that: shortest digits, never an exponent.
        let _ = write!(out, "{}", d);
    }
}

#[inline]
fn put_int(out: &mut Vec<u8>, v: i64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut n = v.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if v < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&buf[i..]);
}

fn put_json_string(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    let mut start = 0;
    for (i, &b) in s.iter().enumerate() {
        if b >= 0x20 && b != b'"' && b != b'\\' {
            continue;
        }
        out.extend_from_slice(&s[start..i]);
        start = i + 1;
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            _ => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(b >> 4) as usize]);
                out.push(HEX[(b & 15) as usize]);
            }
        }
    }
    out.extend_from_slice(&s[start..]);
    out.push(b'"');
}

fn put_json(out: &mut Vec<u8>, any: &Any<'_>) -> Res<()> {
    match any {
        Any::Str(s) => put_json_string(out, s),
        Any::Int(v) => put_int(out, *v),
        Any::Bool(v) => out.extend_from_slice(if *v { b"true" } else { b"false" }),
        Any::Double(d) => {
            if d.is_finite() {
                put_double(out, *d);
            } else {
                out.push(b'"');
                put_double(out, *d);
                out.push(b'"');
            }
        }
        Any::Bytes(s) => {
            out.push(b'"');
            put_base64(out, s);
            out.push(b'"');
        }
        Any::Array(parts) => {
            out.push(b'[');
            let mut first = true;
            parts.for_each(|field, val| {
                if let (1, Val::Bytes(s)) = (field, val) {
                    if !first {
                        out.push(b',');
                    }
                    first = false;
                    put_json(out, &decode_any(&Parts::one(s))?)?;
                }
                Ok(())
            })?;
            out.push(b']');
        }
        Any::KvList(parts) => {
            out.push(b'{');
            let mut first = true;
            parts.for_each(|field, val| {
                if let (1, Val::Bytes(s)) = (field, val) {
                    if !first {
                        out.push(b',');
                    }
                    first = false;
                    let (key, value) = decode_kv(s)?;
                    put_json_string(out, key);
                    out.push(b':');
                    put_json(out, &decode_any(&value)?)?;
                }
                Ok(())
            })?;
            out.push(b'}');
        }
        Any::Unset | Any::Other => out.extend_from_slice(b"null"),
    }
    Ok(())
}

/// The reference's `_truncate` (including its slicing for a negative limit).
#[inline]
fn truncated(data: &[u8], limit: i64) -> &[u8] {
    let len = data.len() as i64;
    if len <= limit {
        return data;
    }
    let mut end = limit;
    while end > 0 && (data[end as usize] & 0xC0) == 0x80 {
        end -= 1;
    }
    if end < 0 {
        end = (len + end).max(0);
    }
    &data[..end as usize]
}

/// An attribute value: a slice of the body or of the identity, or a range of `MapBuilder::text`.
#[derive(Clone, Copy)]
enum Text<'a> {
    Borrowed(&'a [u8]),
    Owned(usize, usize),
}

/// An insertion-ordered map from key to value, with Python dict update semantics.
#[derive(Default)]
struct MapBuilder<'a> {
    entries: Vec<(&'a [u8], Text<'a>)>,
    index: HashMap<&'a [u8], usize>,
    text: Vec<u8>,
}

impl<'a> MapBuilder<'a> {
    fn clear(&mut self) {
        self.entries.clear();
        self.index.clear();
        self.text.clear();
    }

    fn set(&mut self, key: &'a [u8], value: Text<'a>) {
        if self.entries.len() <= LINEAR_LIMIT {
            if let Some(entry) = self.entries.iter_mut().find(|(k, _)| *k == key) {
                entry.1 = value;
                return;
            }
            self.entries.push((key, value));
            if self.entries.len() > LINEAR_LIMIT {
                for (i, (k, _)) in self.entries.iter().enumerate() {
                    self.index.insert(k, i);
                }
            }
        } else {
            match self.index.get(key) {
                Some(&i) => self.entries[i].1 = value,
                None => {
                    self.index.insert(key, self.entries.len());
                    self.entries.push((key, value));
                }
            }
        }
    }

    #[inline]
    fn resolve(&self, value: Text<'a>) -> &[u8] {
        match value {
            Text::Borrowed(s) => s,
            Text::Owned(a, b) => &self.text[a..b],
        }
    }

    fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.entries.iter().find(|(k, _)| *k == key).map(|(_, v)| self.resolve(*v))
    }

    /// Add the attributes of the KeyValue messages `kvs` the way `attribute_pairs` does.
    fn add_attributes(&mut self, kvs: &[&'a [u8]], opts: &Options<'a>, drop: bool) -> Res<()> {
        for (index, kv) in kvs.iter().enumerate() {
            if index as i64 >= opts.max_attributes {
                break;
            }
            let (key, value) = decode_kv(kv)?;
            if drop && SINK_OWNED.contains(&key) {
                continue;
            }
            let text = match decode_any(&value)? {
                Any::Str(s) => Text::Borrowed(truncated(s, opts.max_attribute_length)),
                any => {
                    let start = self.text.len();
                    match &any {
                        Any::Unset => {}
                        Any::Int(v) => put_int(&mut self.text, *v),
                        Any::Bool(v) => {
                            self.text.extend_from_slice(if *v { b"true" } else { b"false" })
                        }
                        Any::Double(d) => put_double(&mut self.text, *d),
                        Any::Bytes(s) => put_base64(&mut self.text, s),
                        _ => put_json(&mut self.text, &any)?,
                    }
                    let kept = truncated(&self.text[start..], opts.max_attribute_length).len();
                    Text::Owned(start, start + kept)
                }
            };
            self.set(key, text);
        }
        Ok(())
    }

    fn write(&self, out: &mut Vec<u8>) {
        put_varint(out, self.entries.len() as u64);
        for (key, value) in &self.entries {
            put_str(out, key);
            put_str(out, self.resolve(*value));
        }
    }
}

pub struct Options<'a> {
    pub identity: Vec<(&'a [u8], &'a [u8])>,
    pub max_attributes: i64,
    pub max_attribute_length: i64,
    /// Spans starting before `min_time` or starting or ending after `max_time` are refused.
    pub min_time: u64,
    pub max_time: u64,
    /// Trace ids (lowercase hex) whose spans are counted but not written.
    pub skip: HashSet<[u8; 32]>,
}

/// The rows of the spans that start on one UTC day (days since the Unix epoch).
pub struct Chunk {
    pub day: u64,
    pub data: Vec<u8>,
    pub rows: u64,
}

/// What a request encodes to: chunks in the order their days first appear, the spans refused,
/// and the spans in the window per trace id.
pub struct Encoded {
    pub chunks: Vec<Chunk>,
    pub rows: u64,
    pub rejected_ids: u64,
    pub rejected_time: u64,
    pub traces: TraceCounts,
}

struct Event<'a> {
    time: u64,
    name: &'a [u8],
    attributes: Vec<&'a [u8]>,
}

struct Link<'a> {
    trace_id: &'a [u8],
    span_id: &'a [u8],
    trace_state: &'a [u8],
    attributes: Vec<&'a [u8]>,
}

/// Spans with valid ids in the window per trace id (lowercase hex), in order of first appearance.
#[derive(Default)]
pub struct TraceCounts {
    pub order: Vec<[u8; 32]>,
    pub counts: HashMap<[u8; 32], u64>,
}

impl TraceCounts {
    fn add(&mut self, trace_hex: [u8; 32]) {
        let count = self.counts.entry(trace_hex).or_insert(0);
        if *count == 0 {
            self.order.push(trace_hex);
        }
        *count += 1;
    }
}

struct Encoder<'a, 'o> {
    opts: &'o Options<'a>,
    /// The rows of the current day's chunk (its `data` is swapped out while it is current).
    out: Vec<u8>,
    chunks: Vec<Chunk>,
    current: usize,
    rows: u64,
    rejected: u64,
    rejected_time: u64,
    traces: TraceCounts,
    map: MapBuilder<'a>,
    span_attributes: Vec<&'a [u8]>,
    events: Vec<Event<'a>>,
    links: Vec<Link<'a>>,
}

/// The values shared by all spans of one scope.
struct Context<'c> {
    service: &'c [u8],
    resource_map: &'c [u8],
    scope_name: &'c [u8],
    scope_version: &'c [u8],
}

impl<'a, 'o> Encoder<'a, 'o> {
    fn resource_spans(&mut self, data: &'a [u8]) -> Res<()> {
        let mut resource = Parts::default();
        let mut scopes: Vec<&'a [u8]> = Vec::new();
        fields(data, &mut |field, val| {
            match (field, val) {
                (1, Val::Bytes(s)) => resource.push(s),
                (2, Val::Bytes(s)) => scopes.push(s),
                _ => {}
            }
            Ok(())
        })?;
        let mut kvs: Vec<&'a [u8]> = Vec::new();
        resource.for_each(|field, val| {
            if let (1, Val::Bytes(s)) = (field, val) {
                kvs.push(s);
            }
            Ok(())
        })?;
        self.map.clear();
        self.map.add_attributes(&kvs, self.opts, true)?;
        let service = self.map.get(b"service.name").unwrap_or(b"").to_vec();
        let mut resource_map = Vec::new();
        self.map.write(&mut resource_map);
        for scope_spans in scopes {
            self.scope_spans(scope_spans, &service, &resource_map)?;
        }
        Ok(())
    }

    fn scope_spans(&mut self, data: &'a [u8], service: &[u8], resource_map: &[u8]) -> Res<()> {
        let mut scope = Parts::default();
        let mut spans: Vec<&'a [u8]> = Vec::new();
        fields(data, &mut |field, val| {
            match (field, val) {
                (1, Val::Bytes(s)) => scope.push(s),
                (2, Val::Bytes(s)) => spans.push(s),
                _ => {}
            }
            Ok(())
        })?;
        let (mut scope_name, mut scope_version): (&[u8], &[u8]) = (b"", b"");
        scope.for_each(|field, val| {
            match (field, val) {
                (1, Val::Bytes(s)) => scope_name = s,
                (2, Val::Bytes(s)) => scope_version = s,
                _ => {}
            }
            Ok(())
        })?;
        let ctx = Context { service, resource_map, scope_name, scope_version };
        for span in spans {
            self.span(span, &ctx)?;
        }
        Ok(())
    }

    fn span(&mut self, data: &'a [u8], ctx: &Context<'_>) -> Res<()> {
        let (mut trace_id, mut span_id, mut parent, mut state, mut name): (
            &[u8],
            &[u8],
            &[u8],
            &[u8],
            &[u8],
        ) = (b"", b"", b"", b"", b"");
        let (mut kind, mut start, mut end) = (0i32, 0u64, 0u64);
        let mut status = Parts::default();
        let mut attributes = std::mem::take(&mut self.span_attributes);
        let mut events = std::mem::take(&mut self.events);
        let mut links = std::mem::take(&mut self.links);
        attributes.clear();
        events.clear();
        links.clear();
        fields(data, &mut |field, val| {
            match (field, val) {
                (1, Val::Bytes(s)) => trace_id = s,
                (2, Val::Bytes(s)) => span_id = s,
                (3, Val::Bytes(s)) => state = s,
                (4, Val::Bytes(s)) => parent = s,
                (5, Val::Bytes(s)) => name = s,
                (6, Val::Varint(v)) => kind = v as i32,
                (7, Val::Fixed64(v)) => start = v,
                (8, Val::Fixed64(v)) => end = v,
                (9, Val::Bytes(s)) => attributes.push(s),
                (11, Val::Bytes(s)) => events.push(decode_event(s)?),
                (13, Val::Bytes(s)) => links.push(decode_link(s)?),
                (15, Val::Bytes(s)) => status.push(s),
                _ => {}
            }
            Ok(())
        })?;
        let valid = trace_id.len() == 16
            && span_id.len() == 8
            && trace_id.iter().any(|&b| b != 0)
            && span_id.iter().any(|&b| b != 0);
        let in_window = start >= self.opts.min_time
            && start <= self.opts.max_time
            && end <= self.opts.max_time;
        let skipped = valid && in_window && {
            let mut trace_hex = [0u8; 32];
            for (i, &b) in trace_id.iter().enumerate() {
                trace_hex[2 * i] = HEX[(b >> 4) as usize];
                trace_hex[2 * i + 1] = HEX[(b & 0x0f) as usize];
            }
            self.traces.add(trace_hex);
            self.opts.skip.contains(&trace_hex)
        };
        if valid && !in_window {
            self.rejected_time += 1;
        } else if skipped {
            // counted above, not written
        } else if valid {
            self.rows += 1;
            self.select_day(start / NS_PER_DAY);
            self.chunks[self.current].rows += 1;
            self.write_span(
                &SpanFields { trace_id, span_id, parent, state, name, kind, start, end },
                ctx,
                &attributes,
                &events,
                &links,
                &status,
            )?;
        } else {
            self.rejected += 1;
        }
        self.span_attributes = attributes;
        self.events = events;
        self.links = links;
        Ok(())
    }

    /// Make `day`'s chunk the one `out` writes to.
    fn select_day(&mut self, day: u64) {
        if !self.chunks.is_empty() && self.chunks[self.current].day == day {
            return;
        }
        if !self.chunks.is_empty() {
            std::mem::swap(&mut self.out, &mut self.chunks[self.current].data);
        }
        self.current = match self.chunks.iter().position(|c| c.day == day) {
            Some(i) => i,
            None => {
                self.chunks.push(Chunk { day, data: Vec::new(), rows: 0 });
                self.chunks.len() - 1
            }
        };
        std::mem::swap(&mut self.out, &mut self.chunks[self.current].data);
    }

    #[allow(clippy::too_many_arguments)]
    fn write_span(
        &mut self,
        s: &SpanFields<'a>,
        ctx: &Context<'_>,
        attributes: &[&'a [u8]],
        events: &[Event<'a>],
        links: &[Link<'a>],
        status: &Parts<'a>,
    ) -> Res<()> {
        let (mut code, mut message): (i32, &[u8]) = (0, b"");
        status.for_each(|field, val| {
            match (field, val) {
                (2, Val::Bytes(m)) => message = m,
                (3, Val::Varint(v)) => code = v as i32,
                _ => {}
            }
            Ok(())
        })?;
        self.map.clear();
        self.map.add_attributes(attributes, self.opts, true)?;
        for &(key, value) in &self.opts.identity {
            self.map.set(key, Text::Borrowed(truncated(value, self.opts.max_attribute_length)));
        }
        let out = &mut self.out;
        put_u64(out, s.start);
        put_hex(out, s.trace_id);
        put_hex(out, s.span_id);
        put_hex(out, s.parent);
        put_str(out, s.state);
        put_str(out, s.name);
        put_str(out, SPAN_KINDS.get(s.kind as usize).copied().unwrap_or(SPAN_KINDS[0]));
        put_str(out, ctx.service);
        out.extend_from_slice(ctx.resource_map);
        put_str(out, ctx.scope_name);
        put_str(out, ctx.scope_version);
        self.map.write(out);
        put_u64(out, if s.end > s.start { s.end - s.start } else { 0 });
        put_str(out, STATUS_CODES.get(code as usize).copied().unwrap_or(STATUS_CODES[0]));
        put_str(out, message);
        put_varint(out, events.len() as u64);
        for e in events {
            put_u64(out, e.time);
        }
        put_varint(out, events.len() as u64);
        for e in events {
            put_str(out, e.name);
        }
        put_varint(out, events.len() as u64);
        for e in events {
            self.map.clear();
            self.map.add_attributes(&e.attributes, self.opts, false)?;
            self.map.write(&mut self.out);
        }
        let out = &mut self.out;
        put_varint(out, links.len() as u64);
        for l in links {
            put_hex(out, l.trace_id);
        }
        put_varint(out, links.len() as u64);
        for l in links {
            put_hex(out, l.span_id);
        }
        put_varint(out, links.len() as u64);
        for l in links {
            put_str(out, l.trace_state);
        }
        put_varint(out, links.len() as u64);
        for l in links {
            self.map.clear();
            self.map.add_attributes(&l.attributes, self.opts, false)?;
            self.map.write(&mut self.out);
        }
        Ok(())
    }
}

struct SpanFields<'a> {
    trace_id: &'a [u8],
    span_id: &'a [u8],
    parent: &'a [u8],
    state: &'a [u8],
    name: &'a [u8],
    kind: i32,
    start: u64,
    end: u64,
}

fn decode_event(data: &[u8]) -> Res<Event<'_>> {
    let mut e = Event { time: 0, name: b"", attributes: Vec::new() };
    fields(data, &mut |field, val| {
        match (field, val) {
            (1, Val::Fixed64(v)) => e.time = v,
            (2, Val::Bytes(s)) => e.name = s,
            (3, Val::Bytes(s)) => e.attributes.push(s),
            _ => {}
        }
        Ok(())
    })?;
    Ok(e)
}

fn decode_link(data: &[u8]) -> Res<Link<'_>> {
    let mut l = Link { trace_id: b"", span_id: b"", trace_state: b"", attributes: Vec::new() };
    fields(data, &mut |field, val| {
        match (field, val) {
            (1, Val::Bytes(s)) => l.trace_id = s,
            (2, Val::Bytes(s)) => l.span_id = s,
            (3, Val::Bytes(s)) => l.trace_state = s,
            (4, Val::Bytes(s)) => l.attributes.push(s),
            _ => {}
        }
        Ok(())
    })?;
    Ok(l)
}

/// RowBinary rows by UTC day, the spans refused for invalid ids or a time outside the window,
/// and the spans in the window per trace id.
pub fn encode_request(body: &[u8], opts: &Options<'_>) -> Result<Encoded, DecodeError> {
    validate(body, Msg::Request, 0)?;
    let mut enc = Encoder {
        opts,
        out: Vec::with_capacity(body.len() + body.len() / 2 + 64),
        chunks: Vec::new(),
        current: 0,
        rows: 0,
        rejected: 0,
        rejected_time: 0,
        traces: TraceCounts::default(),
        map: MapBuilder::default(),
        span_attributes: Vec::new(),
        events: Vec::new(),
        links: Vec::new(),
    };
    fields(body, &mut |field, val| {
        if let (1, Val::Bytes(s)) = (field, val) {
            enc.resource_spans(s)?;
        }
        Ok(())
    })?;
    if !enc.chunks.is_empty() {
        std::mem::swap(&mut enc.out, &mut enc.chunks[enc.current].data);
    }
    Ok(Encoded {
        chunks: enc.chunks,
        rows: enc.rows,
        rejected_ids: enc.rejected,
        rejected_time: enc.rejected_time,
        traces: enc.traces,
    })
}
