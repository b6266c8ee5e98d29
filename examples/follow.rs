//! Follow one resource with the library and print each event: the smallest embedding.
//!
//! Run against the reference server:
//!
//! ```text
//! cargo run -- serve --listen 127.0.0.1:8080 &
//! cargo run --example follow -- http://127.0.0.1:8080/counter/a
//! curl -X POST http://127.0.0.1:8080/counter/a
//! ```

use lrwatch::{Client, Options, Update};

fn main() {
    if let Err(error) = run() {
        eprintln!("follow: {error}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let Some(arg) = std::env::args().nth(1) else {
        eprintln!("usage: follow URL [COUNT]");
        std::process::exit(2);
    };
    let count: usize = std::env::args()
        .nth(2)
        .map_or(Ok(usize::MAX), |n| n.parse())?;
    let url = lrwatch::parse_url(&arg)?;
    let client = Client::new(Options::default())?;
    let mut seen = 0;
    for update in client.follow([url]) {
        match update {
            Update::Event(event) => {
                let body = event
                    .body
                    .map(|b| b.text().into_owned())
                    .unwrap_or_default();
                println!("{} via {}: {body}", event.kind.as_str(), event.transport);
                seen += 1;
                if seen >= count {
                    break;
                }
            }
            Update::Failed(error) => return Err(error.into()),
            _ => {}
        }
    }
    Ok(())
}
