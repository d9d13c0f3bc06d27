//! A deliberately misbehaving component of the `engine` world, for testing the host's
//! sandbox: it tries to reach other origins, open sockets and files, spins, allocates
//! without bound, sleeps past deadlines and panics, each on request.
//!
//! Paths (`request.path`), all answered through `backend.handle`:
//! - `fetch` with `{"url": "..."}`: a GET over `wasi:http`; answers `{"status": N}`;
//! - `connect` with `{"addr": "127.0.0.1:port"}`: a TCP connection through `wasi:sockets`;
//! - `read-file` with `{"path": "..."}`: a file read through `wasi:filesystem`;
//! - `spin`, `allocate`, `sleep` (`{"seconds": N}`), `panic`.
//!
//! Failures come back as `upstream` errors with status 0 and the reason as message.

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "engine",
        generate_all,
    });

    use dockerhub_secrets::engine::types::{BackendHelp, Error, Request, Response, UpstreamError};
    use exports::dockerhub_secrets::engine::backend::Guest;
    use wasi::http::types::{Fields, Method, OutgoingBody, OutgoingRequest, Scheme};

    struct Probe;

    fn failed(message: impl Into<String>) -> Error {
        Error::Upstream(UpstreamError {
            status: 0,
            message: message.into(),
            retry_after: None,
        })
    }

    fn field(request: &Request, name: &str) -> String {
        let start = format!("\"{name}\":\"");
        request
            .data
            .split_once(&start)
            .and_then(|(_, rest)| rest.split_once('"'))
            .map(|(value, _)| value.to_string())
            .unwrap_or_default()
    }

    fn fetch(url: &str) -> Result<u16, Error> {
        let (scheme, rest) = url.split_once("://").ok_or_else(|| failed("no scheme"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let request = OutgoingRequest::new(Fields::new());
        let scheme = if scheme == "https" {
            Scheme::Https
        } else {
            Scheme::Http
        };
        request
            .set_method(&Method::Get)
            .map_err(|_| failed("method"))?;
        request
            .set_scheme(Some(&scheme))
            .map_err(|_| failed("scheme"))?;
        request
            .set_authority(Some(authority))
            .map_err(|_| failed("authority"))?;
        request
            .set_path_with_query(Some(path))
            .map_err(|_| failed("path"))?;
        let body = request.body().map_err(|_| failed("body"))?;
        let pending = wasi::http::outgoing_handler::handle(request, None)
            .map_err(|e| failed(format!("{e:?}")))?;
        OutgoingBody::finish(body, None).map_err(|e| failed(format!("{e:?}")))?;
        pending.subscribe().block();
        let response = pending
            .get()
            .ok_or_else(|| failed("not ready"))?
            .map_err(|_| failed("taken twice"))?
            .map_err(|e| failed(format!("{e:?}")))?;
        Ok(response.status())
    }

    impl Guest for Probe {
        fn handle(request: Request) -> Result<Response, Error> {
            let ok = |data: String| {
                Ok(Response {
                    data: Some(data),
                    lease: None,
                    warnings: Vec::new(),
                })
            };
            match request.path.as_str() {
                "fetch" => ok(format!(
                    "{{\"status\":{}}}",
                    fetch(&field(&request, "url"))?
                )),
                "connect" => match std::net::TcpStream::connect(field(&request, "addr")) {
                    Ok(_) => ok("{\"connected\":true}".into()),
                    Err(e) => Err(failed(e.to_string())),
                },
                "read-file" => match std::fs::read(field(&request, "path")) {
                    Ok(bytes) => ok(format!("{{\"bytes\":{}}}", bytes.len())),
                    Err(e) => Err(failed(e.to_string())),
                },
                "spin" => {
                    let mut n: u64 = 0;
                    loop {
                        n = std::hint::black_box(n.wrapping_add(1));
                    }
                }
                "allocate" => {
                    let mut hoard: Vec<Vec<u8>> = Vec::new();
                    loop {
                        hoard.push(vec![1u8; 1 << 20]);
                        std::hint::black_box(&hoard);
                    }
                }
                "sleep" => {
                    let seconds: u64 = field(&request, "seconds").parse().unwrap_or(3600);
                    wasi::clocks::monotonic_clock::subscribe_duration(seconds * 1_000_000_000)
                        .block();
                    ok("{}".into())
                }
                "panic" => panic!("the probe panics on request"),
                other => Err(Error::UnsupportedPath(other.to_string())),
            }
        }

        fn existence_check(_request: Request) -> Result<Option<bool>, Error> {
            Ok(None)
        }

        fn help() -> BackendHelp {
            BackendHelp {
                description: "sandbox probe".into(),
                paths: Vec::new(),
            }
        }
    }

    export!(Probe);
}
