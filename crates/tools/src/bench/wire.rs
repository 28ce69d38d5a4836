//! The raw HTTP/1.1 client both page benchmarks use: a keep-alive connection as a
//! browser holds one, response heads and chunked bodies.

use std::net::SocketAddr;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// One keep-alive HTTP/1.1 connection to the node, as a browser holds one: requests go
/// one after another; it connects when needed and again after the node closed it.
pub(super) struct HttpConnection {
    address: SocketAddr,
    stream: Option<BufReader<TcpStream>>,
}

impl HttpConnection {
    pub(super) fn new(address: SocketAddr) -> HttpConnection {
        HttpConnection {
            address,
            stream: None,
        }
    }

    pub(super) fn close(&mut self) {
        self.stream = None;
    }

    /// Sends one request and reads its answer: the status and the body. On a reused
    /// connection that the node had closed meanwhile, it is sent once more on a new one.
    pub(super) async fn send(
        &mut self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> std::io::Result<(u16, Vec<u8>)> {
        let reused = self.stream.is_some();
        match self.send_once(method, path, token, body).await {
            Err(_) if reused => self.send_once(method, path, token, body).await,
            answer => answer,
        }
    }

    async fn send_once(
        &mut self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> std::io::Result<(u16, Vec<u8>)> {
        let mut stream = match self.stream.take() {
            Some(stream) => stream,
            None => BufReader::with_capacity(4096, TcpStream::connect(self.address).await?),
        };
        let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.address);
        if let Some(token) = token {
            request.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        if let Some(body) = body {
            request.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ));
        } else {
            request.push_str("\r\n");
        }
        stream.get_mut().write_all(request.as_bytes()).await?;
        let head = read_head(&mut stream).await?;
        let mut answer = Vec::new();
        if head.chunked {
            while read_chunk_into(&mut stream, &mut answer).await? {}
        } else if let Some(length) = head.content_length {
            answer.resize(length.min(1 << 20), 0);
            stream.read_exact(&mut answer).await?;
        }
        if !head.close {
            self.stream = Some(stream);
        }
        Ok((head.status, answer))
    }
}

/// An HTTP response's status and the headers the client needs.
pub(super) struct ResponseHead {
    pub status: u16,
    pub content_length: Option<usize>,
    pub chunked: bool,
    pub close: bool,
}

/// Reads a response's status line and headers (at most 100 lines).
pub(super) async fn read_head(stream: &mut BufReader<TcpStream>) -> std::io::Result<ResponseHead> {
    let mut line = String::new();
    if stream.read_line(&mut line).await? == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the node closed the connection",
        ));
    }
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok());
    let status = status
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP status line: {line:?}")))?;
    let mut head = ResponseHead {
        status,
        content_length: None,
        chunked: false,
        close: false,
    };
    for _ in 0..100 {
        line.clear();
        if stream.read_line(&mut line).await? == 0 || line == "\r\n" {
            return Ok(head);
        }
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim().to_ascii_lowercase();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => head.content_length = value.parse().ok(),
            "transfer-encoding" => head.chunked = value.contains("chunked"),
            "connection" => head.close = value.contains("close"),
            _ => {}
        }
    }
    Err(std::io::Error::other("more than 100 header lines"))
}

/// Appends the next chunk of a chunked body to `body`; `false` after the last (empty)
/// chunk.
pub(super) async fn read_chunk_into(
    stream: &mut BufReader<TcpStream>,
    body: &mut Vec<u8>,
) -> std::io::Result<bool> {
    let mut line = String::new();
    if stream.read_line(&mut line).await? == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the body ended mid-chunk",
        ));
    }
    let size_text = line.split(';').next().unwrap_or("").trim();
    let size = usize::from_str_radix(size_text, 16)
        .map_err(|_| std::io::Error::other("bad chunk size"))?;
    if size > 1 << 20 {
        return Err(std::io::Error::other("a chunk over 1 MiB"));
    }
    let start = body.len();
    body.resize(start + size, 0);
    stream.read_exact(&mut body[start..]).await?;
    line.clear();
    stream.read_line(&mut line).await?;
    Ok(size > 0)
}
