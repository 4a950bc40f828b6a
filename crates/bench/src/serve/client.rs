//! A plain HTTP/1.1 client for the load test: one keep-alive connection per
//! simulated user.

use anyhow::{Context as _, Result};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::{header, Request, StatusCode};
use hyper_util::rt::TokioIo;

/// A keep-alive HTTP/1.1 connection to the service.
pub(super) struct Client {
    sender: SendRequest<Full<Bytes>>,
    authority: String,
    authorization: Option<String>,
}

/// `http://HOST:PORT[/...]` → `HOST:PORT`.
pub(super) fn authority(url: &str) -> lanceflow::Result<String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        lanceflow::Error::InvalidInput(format!(
            "--url {url}: give an http:// URL (e.g. http://127.0.0.1:8080); the load generator \
             speaks plain HTTP/1.1"
        ))
    })?;
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() {
        return Err(lanceflow::Error::InvalidInput(format!(
            "--url {url} names no host"
        )));
    }
    Ok(authority.to_string())
}

impl Client {
    pub(super) async fn connect(authority: &str, authorization: Option<String>) -> Result<Self> {
        let stream = tokio::net::TcpStream::connect(authority)
            .await
            .with_context(|| format!("cannot connect to {authority}; is the service running?"))?;
        stream.set_nodelay(true)?;
        let (sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("connection closed: {e}");
            }
        });
        Ok(Self {
            sender,
            authority: authority.to_string(),
            authorization,
        })
    }

    pub(super) async fn post(&mut self, path: &str, body: Bytes) -> Result<(StatusCode, Bytes)> {
        self.send("POST", path, body).await
    }

    pub(super) async fn send(
        &mut self,
        method: &str,
        path: &str,
        body: Bytes,
    ) -> Result<(StatusCode, Bytes)> {
        self.sender.ready().await?;
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, &self.authority)
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(auth) = &self.authorization {
            request = request.header(header::AUTHORIZATION, auth);
        }
        let response = self
            .sender
            .send_request(request.body(Full::new(body))?)
            .await?;
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        Ok((status, bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authority_of_urls() {
        assert_eq!(
            authority("http://127.0.0.1:8080").unwrap(),
            "127.0.0.1:8080"
        );
        assert_eq!(authority("http://h:1/v1/search").unwrap(), "h:1");
        assert!(authority("https://h:1").is_err());
        assert!(authority("http://").is_err());
    }
}
