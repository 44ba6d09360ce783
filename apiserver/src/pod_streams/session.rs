//! An exec or attach session independent of its transport: the client's input (stdin,
//! stdin close, terminal resizes) goes to the runtime's process, the process's stdout and
//! stderr come back, and its end becomes the `Status` the error channel carries (exit
//! codes reach kubectl as upstream's `NonZeroExitCode` cause).

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use beemesh_translator::ApiError;
use beemesh_workloads::runtime::{
    ByteStream, Runtime, RuntimeError, StreamRequest, StreamSession, TerminalSize,
};

use crate::request::Query;

/// What an exec or attach runs against.
pub struct ExecTarget {
    pub runtime: Arc<dyn Runtime>,
    pub uid: String,
    pub container: String,
    pub request: StreamRequest,
    pub attach: bool,
}

/// What the client sends.
#[derive(Debug, PartialEq, Eq)]
pub enum Input {
    Stdin(Bytes),
    /// The client closed stdin (v5's close channel, SPDY's FIN on the stdin stream).
    StdinEof,
    Resize(TerminalSize),
}

/// What goes back to the client.
#[derive(Debug, PartialEq, Eq)]
pub enum Output {
    Stdout(Bytes),
    Stderr(Bytes),
}

/// `PodExecOptions` / `PodAttachOptions` from the query, checked as upstream.
pub fn stream_request(subresource: &str, query: &Query) -> Result<StreamRequest, ApiError> {
    let command: Vec<String> = query
        .all("command")
        .into_iter()
        .map(str::to_string)
        .collect();
    let tty = query.flag("tty");
    let request = StreamRequest {
        command,
        stdin: query.flag("stdin"),
        stdout: query.flag("stdout"),
        // With a terminal, stderr is merged into stdout.
        stderr: query.flag("stderr") && !tty,
        tty,
    };
    if subresource == "exec" && request.command.is_empty() {
        return Err(ApiError::bad_request("you must specify at least 1 command"));
    }
    if !request.stdin && !request.stdout && !query.flag("stderr") {
        return Err(ApiError::bad_request(
            "you must specify at least 1 of stdin, stdout, stderr",
        ));
    }
    Ok(request)
}

/// Starts the process (exec) or attaches to the container's (attach).
pub async fn start(target: &ExecTarget) -> Result<StreamSession, ApiError> {
    let r = if target.attach {
        target
            .runtime
            .attach(&target.uid, &target.container, &target.request)
            .await
    } else {
        target
            .runtime
            .exec(&target.uid, &target.container, &target.request)
            .await
    };
    r.map_err(super::runtime_error)
}

/// Copies between the client and the session until the process ends; the `Status` the
/// client gets on its error channel.
pub async fn run(
    target: &ExecTarget,
    session: StreamSession,
    mut inputs: mpsc::UnboundedReceiver<Input>,
    outputs: mpsc::UnboundedSender<Output>,
) -> Value {
    let StreamSession {
        stdin,
        stdout,
        stderr,
        resize,
        exit,
    } = session;
    let input_task = tokio::spawn(async move {
        let mut stdin = stdin;
        while let Some(input) = inputs.recv().await {
            match input {
                Input::Stdin(data) => {
                    if let Some(w) = stdin.as_mut()
                        && w.write_all(&data).await.is_err()
                    {
                        stdin = None;
                    }
                    if let Some(w) = stdin.as_mut() {
                        let _ = w.flush().await;
                    }
                }
                Input::StdinEof => {
                    if let Some(mut w) = stdin.take() {
                        let _ = w.shutdown().await;
                    }
                }
                Input::Resize(size) => {
                    if let Some(r) = &resize {
                        let _ = r.send(size);
                    }
                }
            }
        }
    });
    let out = pump(stdout, outputs.clone(), Output::Stdout);
    let err = pump(stderr, outputs, Output::Stderr);
    let (_, _, code) = tokio::join!(out, err, exit);
    input_task.abort();
    exit_status(&target.request.command, code)
}

async fn pump(
    stream: Option<ByteStream>,
    tx: mpsc::UnboundedSender<Output>,
    wrap: fn(Bytes) -> Output,
) {
    let Some(mut stream) = stream else { return };
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(b) if b.is_empty() => {}
            Ok(b) => {
                if tx.send(wrap(b)).is_err() {
                    return;
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "exec output ended");
                return;
            }
        }
    }
}

/// The `Status` upstream's kubelet writes on the error channel when a command ends.
pub fn exit_status(command: &[String], code: Result<i32, RuntimeError>) -> Value {
    match code {
        Ok(0) => json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}),
        Ok(code) => json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": format!(
                "command terminated with non-zero exit code: error executing command [{}], exit code {code}",
                command.join(" ")
            ),
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
        }),
        Err(e) => error_status(&e.to_string()),
    }
}

/// A failure the error channel reports (the session could not start or broke).
pub fn error_status(message: &str) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "InternalError",
        "code": 500,
    })
}

/// A resize message (`{"Width":80,"Height":24}`) from the resize channel.
pub fn parse_resize(data: &[u8]) -> Option<TerminalSize> {
    let v: Value = serde_json::from_slice(data).ok()?;
    let width = v.get("Width").and_then(Value::as_u64)?;
    let height = v.get("Height").and_then(Value::as_u64)?;
    Some(TerminalSize {
        width: u16::try_from(width).ok()?,
        height: u16::try_from(height).ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_become_upstreams_status() {
        let cmd = vec!["sh".to_string(), "-c".to_string(), "exit 3".to_string()];
        let s = exit_status(&cmd, Ok(3));
        assert_eq!(s["status"], "Failure");
        assert_eq!(s["reason"], "NonZeroExitCode");
        assert_eq!(
            s["details"]["causes"][0],
            json!({"reason": "ExitCode", "message": "3"})
        );
        assert_eq!(exit_status(&cmd, Ok(0))["status"], "Success");
    }

    #[test]
    fn options_need_a_command_and_a_stream() {
        let q = Query::parse(Some("command=echo&command=hi&stdout=true&stderr=true"));
        let r = stream_request("exec", &q).unwrap();
        assert_eq!(r.command, ["echo", "hi"]);
        assert!(r.stdout && r.stderr && !r.stdin && !r.tty);
        assert_eq!(
            stream_request("exec", &Query::parse(Some("stdout=true")))
                .unwrap_err()
                .code(),
            400
        );
        assert!(stream_request("attach", &Query::parse(Some("stdout=true"))).is_ok());
        assert_eq!(
            stream_request("exec", &Query::parse(Some("command=ls")))
                .unwrap_err()
                .code(),
            400
        );
        let tty = stream_request(
            "exec",
            &Query::parse(Some("command=sh&tty=true&stderr=true&stdin=true")),
        )
        .unwrap();
        assert!(tty.tty && !tty.stderr);
        assert_eq!(
            parse_resize(br#"{"Width":80,"Height":24}"#),
            Some(TerminalSize {
                width: 80,
                height: 24
            })
        );
    }
}
