//! The server side of a SPDY/3.1 connection: the client opens every stream (as kubectl's
//! exec and port-forward do), the server accepts each with an empty SYN_REPLY, answers
//! PINGs, and writes DATA on the streams it was handed.
//!
//! Flow control (WINDOW_UPDATE) is not enforced either way: the Go peer (spdystream)
//! neither enforces nor sends it, and the Kubernetes protocols are paced by their ends.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::frame::{self, FLAG_FIN, Frame, FrameHead, HeaderCodec, Headers, MAX_FRAME_LEN};

/// How much of a write goes into one DATA frame.
const DATA_CHUNK: usize = 32 * 1024;
/// How long the peer gets to close its side once the server has said GOAWAY.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

enum Command {
    Frame(Frame),
    Shutdown,
}

/// A stream the client opened.
pub struct SpdyStream {
    pub id: u32,
    pub headers: Headers,
    /// What the client sends on it; ends (None) at the client's FIN or RST.
    pub incoming: mpsc::UnboundedReceiver<Bytes>,
    pub writer: StreamWriter,
}

impl SpdyStream {
    /// The value of a header (names are lower-case on the wire).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Writes to one stream; cheap to clone.
#[derive(Clone)]
pub struct StreamWriter {
    id: u32,
    tx: mpsc::UnboundedSender<Command>,
}

impl StreamWriter {
    /// Queues `data` as DATA frames; false once the connection is gone.
    pub fn write(&self, data: Bytes) -> bool {
        let mut rest = data;
        while !rest.is_empty() {
            let chunk = rest.split_to(rest.len().min(DATA_CHUNK));
            if self
                .tx
                .send(Command::Frame(Frame::Data {
                    stream_id: self.id,
                    flags: 0,
                    data: chunk,
                }))
                .is_err()
            {
                return false;
            }
        }
        true
    }

    /// Half-closes the stream (an empty DATA frame with FIN).
    pub fn close(&self) {
        let _ = self.tx.send(Command::Frame(Frame::Data {
            stream_id: self.id,
            flags: FLAG_FIN,
            data: Bytes::new(),
        }));
    }

    /// Resets the stream (the peer sees it as broken).
    pub fn reset(&self, status: u32) {
        let _ = self.tx.send(Command::Frame(Frame::RstStream {
            stream_id: self.id,
            status,
        }));
    }
}

/// A served connection: the streams the client opens, in order.
pub struct Connection {
    pub streams: mpsc::UnboundedReceiver<SpdyStream>,
    tx: mpsc::UnboundedSender<Command>,
    writer_done: Option<tokio::task::JoinHandle<()>>,
}

impl Connection {
    /// Says GOAWAY after everything queued so far, closes the connection and waits until
    /// it is written out.
    pub async fn shutdown(mut self) {
        let _ = self.tx.send(Command::Shutdown);
        if let Some(writer) = self.writer_done.take() {
            let _ = writer.await;
        }
    }
}

/// Serves SPDY/3.1 on an upgraded connection.
pub fn serve<T>(io: T) -> Connection
where
    T: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut read_half, mut write_half) = tokio::io::split(io);
    let (tx, mut rx) = mpsc::unbounded_channel::<Command>();
    let (streams_tx, streams) = mpsc::unbounded_channel();
    let reader_tx = tx.clone();
    let reader = tokio::spawn(async move {
        if let Err(e) = read_frames(&mut read_half, reader_tx, streams_tx).await {
            tracing::debug!(error = %e, "spdy connection read ended");
        }
    });
    let reader_abort = reader.abort_handle();
    let writer_done = tokio::spawn(async move {
        let mut codec = HeaderCodec::new();
        let mut last_stream = 0u32;
        while let Some(cmd) = rx.recv().await {
            let frame = match cmd {
                Command::Frame(f) => f,
                Command::Shutdown => {
                    let goaway = Frame::GoAway {
                        last_good_stream_id: last_stream,
                        status: 0,
                    };
                    if let Ok(bytes) = frame::encode(&goaway, &mut codec) {
                        let _ = write_half.write_all(&bytes).await;
                    }
                    let _ = write_half.flush().await;
                    let _ = write_half.shutdown().await;
                    break;
                }
            };
            if let Frame::SynReply { stream_id, .. } = &frame {
                last_stream = last_stream.max(*stream_id);
            }
            match frame::encode(&frame, &mut codec) {
                Ok(bytes) => {
                    if write_half.write_all(&bytes).await.is_err() {
                        break;
                    }
                    // Flush once the queue is drained, so a burst goes out together.
                    if rx.is_empty() && write_half.flush().await.is_err() {
                        break;
                    }
                }
                Err(e) => tracing::debug!(error = %e, "spdy frame not sent"),
            }
        }
        if tokio::time::timeout(CLOSE_GRACE, reader).await.is_err() {
            reader_abort.abort();
        }
    });
    Connection {
        streams,
        tx,
        writer_done: Some(writer_done),
    }
}

#[derive(Debug, thiserror::Error)]
enum ReadError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Frame(#[from] frame::FrameError),
}

async fn read_frames<R: AsyncRead + Unpin>(
    r: &mut R,
    tx: mpsc::UnboundedSender<Command>,
    streams_tx: mpsc::UnboundedSender<SpdyStream>,
) -> Result<(), ReadError> {
    let mut codec = HeaderCodec::new();
    let mut open: HashMap<u32, mpsc::UnboundedSender<Bytes>> = HashMap::new();
    loop {
        let mut head = [0u8; 8];
        match r.read_exact(&mut head).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        let head = FrameHead::parse(head);
        if head.length > MAX_FRAME_LEN {
            return Err(frame::FrameError::TooLarge(head.length).into());
        }
        let mut body = vec![0u8; head.length];
        r.read_exact(&mut body).await?;
        match frame::decode(head, Bytes::from(body), &mut codec)? {
            Frame::SynStream {
                stream_id,
                flags,
                headers,
                ..
            } => {
                let (in_tx, incoming) = mpsc::unbounded_channel();
                if flags & FLAG_FIN == 0 {
                    open.insert(stream_id, in_tx);
                }
                let _ = tx.send(Command::Frame(Frame::SynReply {
                    stream_id,
                    flags: 0,
                    headers: Vec::new(),
                }));
                let stream = SpdyStream {
                    id: stream_id,
                    headers,
                    incoming,
                    writer: StreamWriter {
                        id: stream_id,
                        tx: tx.clone(),
                    },
                };
                if streams_tx.send(stream).is_err() {
                    tracing::debug!(stream_id, "spdy stream opened after the handler ended");
                }
            }
            Frame::Data {
                stream_id,
                flags,
                data,
            } => {
                if let Some(s) = open.get(&stream_id)
                    && !data.is_empty()
                {
                    let _ = s.send(data);
                }
                if flags & FLAG_FIN != 0 {
                    open.remove(&stream_id);
                }
            }
            Frame::RstStream { stream_id, .. } => {
                open.remove(&stream_id);
            }
            Frame::Ping { id } => {
                let _ = tx.send(Command::Frame(Frame::Ping { id }));
            }
            Frame::GoAway { .. } => return Ok(()),
            Frame::SynReply { .. }
            | Frame::Headers { .. }
            | Frame::Settings { .. }
            | Frame::WindowUpdate { .. }
            | Frame::Unknown { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client end: writes frames with its own codec, reads the server's.
    struct Client<T> {
        io: T,
        tx: HeaderCodec,
        rx: HeaderCodec,
    }

    impl<T: AsyncRead + AsyncWrite + Unpin> Client<T> {
        async fn send(&mut self, f: Frame) {
            let b = frame::encode(&f, &mut self.tx).unwrap();
            self.io.write_all(&b).await.unwrap();
        }
        async fn recv(&mut self) -> Option<Frame> {
            let mut head = [0u8; 8];
            self.io.read_exact(&mut head).await.ok()?;
            let head = FrameHead::parse(head);
            let mut body = vec![0u8; head.length];
            self.io.read_exact(&mut body).await.ok()?;
            Some(frame::decode(head, Bytes::from(body), &mut self.rx).unwrap())
        }
    }

    #[tokio::test]
    async fn streams_are_accepted_pings_answered_and_data_flows_both_ways() {
        let (client_io, server_io) = tokio::io::duplex(1 << 16);
        let mut conn = serve(server_io);
        let mut client = Client {
            io: client_io,
            tx: HeaderCodec::new(),
            rx: HeaderCodec::new(),
        };
        client
            .send(Frame::SynStream {
                stream_id: 1,
                associated_to: 0,
                priority: 0,
                flags: 0,
                headers: vec![("streamtype".into(), "stdin".into())],
            })
            .await;
        assert_eq!(
            client.recv().await,
            Some(Frame::SynReply {
                stream_id: 1,
                flags: 0,
                headers: vec![]
            })
        );
        let mut stream = conn.streams.recv().await.unwrap();
        assert_eq!(stream.header("streamType"), Some("stdin"));
        client.send(Frame::Ping { id: 7 }).await;
        assert_eq!(client.recv().await, Some(Frame::Ping { id: 7 }));
        client
            .send(Frame::Data {
                stream_id: 1,
                flags: FLAG_FIN,
                data: Bytes::from_static(b"hi"),
            })
            .await;
        assert_eq!(stream.incoming.recv().await.as_deref(), Some(&b"hi"[..]));
        assert_eq!(stream.incoming.recv().await, None, "FIN ends the stream");
        stream.writer.write(Bytes::from_static(b"out"));
        stream.writer.close();
        assert_eq!(
            client.recv().await,
            Some(Frame::Data {
                stream_id: 1,
                flags: 0,
                data: Bytes::from_static(b"out")
            })
        );
        assert_eq!(
            client.recv().await,
            Some(Frame::Data {
                stream_id: 1,
                flags: FLAG_FIN,
                data: Bytes::new()
            })
        );
        let shutdown = tokio::spawn(conn.shutdown());
        assert_eq!(
            client.recv().await,
            Some(Frame::GoAway {
                last_good_stream_id: 1,
                status: 0
            })
        );
        assert_eq!(client.recv().await, None);
        drop(client);
        shutdown.await.unwrap();
    }
}
