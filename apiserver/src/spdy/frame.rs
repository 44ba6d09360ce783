//! SPDY/3.1 frames on the wire (draft-mbelshe-httpbis-spdy-00 §2.2–2.6), only what the
//! Kubernetes stream protocols use: SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING,
//! GOAWAY, HEADERS, WINDOW_UPDATE and DATA. Header blocks are zlib-compressed with the
//! SPDY/3 dictionary, one compression context per direction per connection.

use bytes::{BufMut, Bytes, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::dictionary::DICTIONARY;

/// The only version spoken.
pub const VERSION: u16 = 3;
/// Last frame of a stream in this direction.
pub const FLAG_FIN: u8 = 0x01;
/// SYN_STREAM: the receiver will not send on this stream.
pub const FLAG_UNIDIRECTIONAL: u8 = 0x02;

const TYPE_SYN_STREAM: u16 = 1;
const TYPE_SYN_REPLY: u16 = 2;
const TYPE_RST_STREAM: u16 = 3;
const TYPE_SETTINGS: u16 = 4;
const TYPE_PING: u16 = 6;
const TYPE_GOAWAY: u16 = 7;
const TYPE_HEADERS: u16 = 8;
const TYPE_WINDOW_UPDATE: u16 = 9;

/// The largest frame body accepted (the length field is 24 bits).
pub const MAX_FRAME_LEN: usize = 0x00ff_ffff;
/// Header blocks larger than this once decompressed are refused (a zlib bomb).
const MAX_HEADER_BLOCK: usize = 256 * 1024;

/// A name/value header list, names lower-case as SPDY/3 requires.
pub type Headers = Vec<(String, String)>;

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("spdy: unsupported version {0}")]
    Version(u16),
    #[error("spdy: malformed {0} frame")]
    Malformed(&'static str),
    #[error("spdy: header block: {0}")]
    HeaderBlock(String),
    #[error("spdy: frame of {0} bytes is too large")]
    TooLarge(usize),
}

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    SynStream {
        stream_id: u32,
        associated_to: u32,
        priority: u8,
        flags: u8,
        headers: Headers,
    },
    SynReply {
        stream_id: u32,
        flags: u8,
        headers: Headers,
    },
    RstStream {
        stream_id: u32,
        status: u32,
    },
    Settings {
        flags: u8,
        entries: Vec<(u8, u32, u32)>,
    },
    Ping {
        id: u32,
    },
    GoAway {
        last_good_stream_id: u32,
        status: u32,
    },
    Headers {
        stream_id: u32,
        flags: u8,
        headers: Headers,
    },
    WindowUpdate {
        stream_id: u32,
        delta: u32,
    },
    Data {
        stream_id: u32,
        flags: u8,
        data: Bytes,
    },
    /// A control frame type this server does not act on (NOOP, CREDENTIAL ...).
    Unknown {
        frame_type: u16,
    },
}

/// The 8-byte frame header: what kind of frame follows and how long its body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHead {
    /// `Some(type)` for a control frame, `None` for DATA.
    pub control: Option<(u16, u16)>,
    /// DATA: the stream id.
    pub stream_id: u32,
    pub flags: u8,
    pub length: usize,
}

impl FrameHead {
    pub fn parse(b: [u8; 8]) -> FrameHead {
        let word = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        let flags = b[4];
        let length = u32::from_be_bytes([0, b[5], b[6], b[7]]) as usize;
        if word & 0x8000_0000 != 0 {
            let version = ((word >> 16) & 0x7fff) as u16;
            let frame_type = (word & 0xffff) as u16;
            FrameHead {
                control: Some((version, frame_type)),
                stream_id: 0,
                flags,
                length,
            }
        } else {
            FrameHead {
                control: None,
                stream_id: word & 0x7fff_ffff,
                flags,
                length,
            }
        }
    }
}

/// The zlib contexts of one connection: header blocks form one stream per direction.
pub struct HeaderCodec {
    compress: Compress,
    decompress: Decompress,
}

impl Default for HeaderCodec {
    fn default() -> Self {
        HeaderCodec::new()
    }
}

impl HeaderCodec {
    pub fn new() -> HeaderCodec {
        let mut compress = Compress::new(Compression::default(), true);
        // Only fails on a stream already started; this one is new.
        let _ = compress.set_dictionary(&DICTIONARY);
        HeaderCodec {
            compress,
            decompress: Decompress::new(true),
        }
    }

    /// A header block: the pairs, length-prefixed, compressed and sync-flushed.
    pub fn encode(&mut self, headers: &[(String, String)]) -> Result<Vec<u8>, FrameError> {
        let mut raw = BytesMut::new();
        raw.put_u32(headers.len() as u32);
        for (name, value) in headers {
            let name = name.to_ascii_lowercase();
            raw.put_u32(name.len() as u32);
            raw.put_slice(name.as_bytes());
            raw.put_u32(value.len() as u32);
            raw.put_slice(value.as_bytes());
        }
        let mut out = Vec::with_capacity(raw.len() + 64);
        let mut input: &[u8] = &raw;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(256);
            }
            let before = self.compress.total_in();
            self.compress
                .compress_vec(input, &mut out, FlushCompress::Sync)
                .map_err(|e| FrameError::HeaderBlock(e.to_string()))?;
            let used = (self.compress.total_in() - before) as usize;
            input = &input[used..];
            // A sync flush is complete once all input is taken and output space is left.
            if input.is_empty() && out.len() < out.capacity() {
                break;
            }
        }
        Ok(out)
    }

    /// The pairs of a compressed header block (multi-valued headers stay NUL-joined).
    pub fn decode(&mut self, block: &[u8]) -> Result<Headers, FrameError> {
        let mut raw: Vec<u8> = Vec::with_capacity(block.len() * 4 + 64);
        let mut input = block;
        loop {
            if raw.len() > MAX_HEADER_BLOCK {
                return Err(FrameError::HeaderBlock("too large".into()));
            }
            if raw.capacity() - raw.len() < 256 {
                raw.reserve(1024);
            }
            let before = self.decompress.total_in();
            let out_before = raw.len();
            match self
                .decompress
                .decompress_vec(input, &mut raw, FlushDecompress::Sync)
            {
                Ok(Status::StreamEnd) => break,
                Ok(_) => {}
                Err(e) if e.needs_dictionary().is_some() => {
                    self.decompress
                        .set_dictionary(&DICTIONARY)
                        .map_err(|e| FrameError::HeaderBlock(e.to_string()))?;
                }
                Err(e) => return Err(FrameError::HeaderBlock(e.to_string())),
            }
            let used = (self.decompress.total_in() - before) as usize;
            input = &input[used..];
            // Everything taken and room left: the block is fully inflated.
            if input.is_empty() && raw.len() < raw.capacity() {
                break;
            }
            // No progress with input left: a truncated or corrupt block.
            if used == 0 && raw.len() == out_before && raw.len() < raw.capacity() {
                return Err(FrameError::HeaderBlock("truncated header block".into()));
            }
        }
        parse_pairs(&raw)
    }
}

fn parse_pairs(raw: &[u8]) -> Result<Headers, FrameError> {
    let mut r = Reader(raw);
    let n = r.u32().ok_or(FrameError::Malformed("header block"))? as usize;
    let mut headers = Vec::with_capacity(n.min(64));
    for _ in 0..n {
        let name = r.string().ok_or(FrameError::Malformed("header block"))?;
        let value = r.string().ok_or(FrameError::Malformed("header block"))?;
        headers.push((name.to_ascii_lowercase(), value));
    }
    Ok(headers)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn u32(&mut self) -> Option<u32> {
        let (head, rest) = self.0.split_first_chunk::<4>()?;
        self.0 = rest;
        Some(u32::from_be_bytes(*head))
    }
    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn string(&mut self) -> Option<String> {
        let n = self.u32()? as usize;
        let b = self.bytes(n)?;
        Some(String::from_utf8_lossy(b).into_owned())
    }
}

/// Decodes a frame body given its head.
pub fn decode(head: FrameHead, body: Bytes, codec: &mut HeaderCodec) -> Result<Frame, FrameError> {
    let Some((version, frame_type)) = head.control else {
        return Ok(Frame::Data {
            stream_id: head.stream_id,
            flags: head.flags,
            data: body,
        });
    };
    if version != VERSION {
        return Err(FrameError::Version(version));
    }
    let mut r = Reader(&body);
    let frame = match frame_type {
        TYPE_SYN_STREAM => {
            let stream_id = r.u32().ok_or(FrameError::Malformed("SYN_STREAM"))? & 0x7fff_ffff;
            let associated_to = r.u32().ok_or(FrameError::Malformed("SYN_STREAM"))? & 0x7fff_ffff;
            let pri = r.bytes(2).ok_or(FrameError::Malformed("SYN_STREAM"))?;
            Frame::SynStream {
                stream_id,
                associated_to,
                priority: pri[0] >> 5,
                flags: head.flags,
                headers: codec.decode(r.0)?,
            }
        }
        TYPE_SYN_REPLY => {
            let stream_id = r.u32().ok_or(FrameError::Malformed("SYN_REPLY"))? & 0x7fff_ffff;
            Frame::SynReply {
                stream_id,
                flags: head.flags,
                headers: codec.decode(r.0)?,
            }
        }
        TYPE_HEADERS => {
            let stream_id = r.u32().ok_or(FrameError::Malformed("HEADERS"))? & 0x7fff_ffff;
            Frame::Headers {
                stream_id,
                flags: head.flags,
                headers: codec.decode(r.0)?,
            }
        }
        TYPE_RST_STREAM => Frame::RstStream {
            stream_id: r.u32().ok_or(FrameError::Malformed("RST_STREAM"))? & 0x7fff_ffff,
            status: r.u32().ok_or(FrameError::Malformed("RST_STREAM"))?,
        },
        TYPE_SETTINGS => {
            let n = r.u32().ok_or(FrameError::Malformed("SETTINGS"))?;
            let mut entries = Vec::new();
            for _ in 0..n {
                let word = r.u32().ok_or(FrameError::Malformed("SETTINGS"))?;
                let value = r.u32().ok_or(FrameError::Malformed("SETTINGS"))?;
                entries.push(((word >> 24) as u8, word & 0x00ff_ffff, value));
            }
            Frame::Settings {
                flags: head.flags,
                entries,
            }
        }
        TYPE_PING => Frame::Ping {
            id: r.u32().ok_or(FrameError::Malformed("PING"))?,
        },
        TYPE_GOAWAY => Frame::GoAway {
            last_good_stream_id: r.u32().ok_or(FrameError::Malformed("GOAWAY"))? & 0x7fff_ffff,
            status: r.u32().unwrap_or(0),
        },
        TYPE_WINDOW_UPDATE => Frame::WindowUpdate {
            stream_id: r.u32().ok_or(FrameError::Malformed("WINDOW_UPDATE"))? & 0x7fff_ffff,
            delta: r.u32().ok_or(FrameError::Malformed("WINDOW_UPDATE"))? & 0x7fff_ffff,
        },
        other => Frame::Unknown { frame_type: other },
    };
    Ok(frame)
}

fn control(out: &mut BytesMut, frame_type: u16, flags: u8, body: &[u8]) -> Result<(), FrameError> {
    if body.len() > MAX_FRAME_LEN {
        return Err(FrameError::TooLarge(body.len()));
    }
    out.put_u32(0x8000_0000 | (u32::from(VERSION) << 16) | u32::from(frame_type));
    out.put_u32((u32::from(flags) << 24) | body.len() as u32);
    out.put_slice(body);
    Ok(())
}

/// Encodes a frame (header blocks through `codec`, so frames must be written in the
/// order they are encoded).
pub fn encode(frame: &Frame, codec: &mut HeaderCodec) -> Result<Bytes, FrameError> {
    let mut out = BytesMut::new();
    let mut body = BytesMut::new();
    match frame {
        Frame::SynStream {
            stream_id,
            associated_to,
            priority,
            flags,
            headers,
        } => {
            body.put_u32(stream_id & 0x7fff_ffff);
            body.put_u32(associated_to & 0x7fff_ffff);
            body.put_u8((priority & 0x7) << 5);
            body.put_u8(0);
            body.put_slice(&codec.encode(headers)?);
            control(&mut out, TYPE_SYN_STREAM, *flags, &body)?;
        }
        Frame::SynReply {
            stream_id,
            flags,
            headers,
        } => {
            body.put_u32(stream_id & 0x7fff_ffff);
            body.put_slice(&codec.encode(headers)?);
            control(&mut out, TYPE_SYN_REPLY, *flags, &body)?;
        }
        Frame::Headers {
            stream_id,
            flags,
            headers,
        } => {
            body.put_u32(stream_id & 0x7fff_ffff);
            body.put_slice(&codec.encode(headers)?);
            control(&mut out, TYPE_HEADERS, *flags, &body)?;
        }
        Frame::RstStream { stream_id, status } => {
            body.put_u32(stream_id & 0x7fff_ffff);
            body.put_u32(*status);
            control(&mut out, TYPE_RST_STREAM, 0, &body)?;
        }
        Frame::Settings { flags, entries } => {
            body.put_u32(entries.len() as u32);
            for (f, id, value) in entries {
                body.put_u32((u32::from(*f) << 24) | (id & 0x00ff_ffff));
                body.put_u32(*value);
            }
            control(&mut out, TYPE_SETTINGS, *flags, &body)?;
        }
        Frame::Ping { id } => {
            body.put_u32(*id);
            control(&mut out, TYPE_PING, 0, &body)?;
        }
        Frame::GoAway {
            last_good_stream_id,
            status,
        } => {
            body.put_u32(last_good_stream_id & 0x7fff_ffff);
            body.put_u32(*status);
            control(&mut out, TYPE_GOAWAY, 0, &body)?;
        }
        Frame::WindowUpdate { stream_id, delta } => {
            body.put_u32(stream_id & 0x7fff_ffff);
            body.put_u32(delta & 0x7fff_ffff);
            control(&mut out, TYPE_WINDOW_UPDATE, 0, &body)?;
        }
        Frame::Data {
            stream_id,
            flags,
            data,
        } => {
            if data.len() > MAX_FRAME_LEN {
                return Err(FrameError::TooLarge(data.len()));
            }
            out.put_u32(stream_id & 0x7fff_ffff);
            out.put_u32((u32::from(*flags) << 24) | data.len() as u32);
            out.put_slice(data);
        }
        Frame::Unknown { .. } => return Err(FrameError::Malformed("unknown")),
    }
    Ok(out.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(frame: Frame) -> Frame {
        let mut tx = HeaderCodec::new();
        let mut rx = HeaderCodec::new();
        let wire = encode(&frame, &mut tx).unwrap();
        let mut head = [0u8; 8];
        head.copy_from_slice(&wire[..8]);
        let head = FrameHead::parse(head);
        assert_eq!(head.length, wire.len() - 8);
        decode(head, wire.slice(8..), &mut rx).unwrap()
    }

    #[test]
    fn every_frame_type_survives_encode_and_decode() {
        let headers = vec![
            ("streamtype".to_string(), "stdout".to_string()),
            ("port".to_string(), "8080".to_string()),
        ];
        for frame in [
            Frame::SynStream {
                stream_id: 3,
                associated_to: 0,
                priority: 0,
                flags: FLAG_FIN,
                headers: headers.clone(),
            },
            Frame::SynReply {
                stream_id: 5,
                flags: 0,
                headers: vec![],
            },
            Frame::Headers {
                stream_id: 5,
                flags: 0,
                headers: headers.clone(),
            },
            Frame::RstStream {
                stream_id: 7,
                status: 5,
            },
            Frame::Settings {
                flags: 0,
                entries: vec![(0, 7, 65536)],
            },
            Frame::Ping { id: 42 },
            Frame::GoAway {
                last_good_stream_id: 9,
                status: 0,
            },
            Frame::WindowUpdate {
                stream_id: 1,
                delta: 1000,
            },
            Frame::Data {
                stream_id: 1,
                flags: FLAG_FIN,
                data: Bytes::from_static(b"hello"),
            },
        ] {
            assert_eq!(roundtrip(frame.clone()), frame);
        }
    }

    #[test]
    fn header_blocks_share_one_zlib_stream_per_direction() {
        let mut tx = HeaderCodec::new();
        let mut rx = HeaderCodec::new();
        for i in 0..20 {
            let h = vec![
                ("streamtype".to_string(), "data".to_string()),
                ("requestid".to_string(), i.to_string()),
            ];
            let block = tx.encode(&h).unwrap();
            assert_eq!(rx.decode(&block).unwrap(), h);
        }
    }

    #[test]
    fn the_first_header_block_names_the_spdy3_dictionary() {
        let mut tx = HeaderCodec::new();
        let block = tx.encode(&[("a".into(), "b".into())]).unwrap();
        // zlib header with FDICT set, then the dictionary's Adler-32.
        assert_eq!(block[1] & 0x20, 0x20);
        assert_eq!(&block[2..6], &0xe3c6_a7c2u32.to_be_bytes());
    }

    #[test]
    fn a_truncated_header_block_is_an_error_not_a_hang() {
        let mut tx = HeaderCodec::new();
        let mut rx = HeaderCodec::new();
        let block = tx.encode(&[("streamtype".into(), "error".into())]).unwrap();
        assert!(rx.decode(&block[..block.len() / 2]).is_err());
    }

    #[test]
    fn control_frame_head_is_version_3_with_flags_and_length() {
        let mut codec = HeaderCodec::new();
        let wire = encode(&Frame::Ping { id: 1 }, &mut codec).unwrap();
        assert_eq!(&wire[..], &[0x80, 0x03, 0x00, 0x06, 0, 0, 0, 4, 0, 0, 0, 1]);
        let data = encode(
            &Frame::Data {
                stream_id: 3,
                flags: FLAG_FIN,
                data: Bytes::from_static(b"x"),
            },
            &mut codec,
        )
        .unwrap();
        assert_eq!(&data[..], &[0, 0, 0, 3, 1, 0, 0, 1, b'x']);
        let mut head = [0u8; 8];
        head.copy_from_slice(&wire[..8]);
        assert!(matches!(
            decode(
                FrameHead::parse([0x80, 0x02, 0, 6, 0, 0, 0, 4]),
                Bytes::from_static(&[0, 0, 0, 1]),
                &mut codec
            ),
            Err(FrameError::Version(2))
        ));
    }
}
