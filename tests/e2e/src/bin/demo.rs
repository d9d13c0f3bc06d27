//! The seed session, run through the compiled engine in the host runtime against a local
//! Docker Hub fake, printed the way `bao` shows it. (With the OpenBao plugin host, the same
//! session runs in a real OpenBao.)

use dockerhub_secrets::runtime::{Operation, Response};
use dockerhub_secrets_e2e::{Engine, Issued, PASSWORD};
use serde_json::{Map, Value, json};

fn table(data: &Map<String, Value>, lease: Option<(u64, bool)>) {
    let mut rows: Vec<(String, String)> = Vec::new();
    if let Some((ttl, renewable)) = lease {
        rows.push(("lease_duration".into(), format!("{}m", ttl / 60)));
        rows.push(("lease_renewable".into(), renewable.to_string()));
    }
    for (key, value) in data {
        let shown = match value {
            Value::String(s) => s.clone(),
            Value::Array(items) => {
                let items: Vec<String> = items
                    .iter()
                    .map(|i| i.as_str().unwrap_or_default().to_string())
                    .collect();
                format!("[{}]", items.join(" "))
            }
            other => other.to_string(),
        };
        rows.push((key.clone(), shown));
    }
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(3).max(3);
    println!("{:width$}    Value\n{:width$}    -----", "Key", "---");
    for (key, value) in rows {
        println!("{key:width$}    {value}");
    }
    println!();
}

fn data(response: &Response) -> Map<String, Value> {
    dockerhub_secrets_e2e::data(response)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let engine = Engine::start();
    println!("Docker Hub fake listening on {}\n", engine.hub.url());

    println!("$ write dockerhub/config/hoeg namespace=hoeg,my-organization password=...");
    engine
        .call(
            Operation::Update,
            "config/hoeg",
            json!({"namespace": "hoeg,my-organization", "password": PASSWORD}),
        )
        .await?;
    println!("Success! Data written to: dockerhub/config/hoeg\n");

    println!("$ read dockerhub/config/hoeg");
    table(
        &data(
            &engine
                .call(Operation::Read, "config/hoeg", Value::Null)
                .await?,
        ),
        None,
    );

    println!("$ write dockerhub/token/hoeg/my-organization label=release-build");
    let response = engine
        .call(
            Operation::Update,
            "token/hoeg/my-organization",
            json!({"label": "release-build"}),
        )
        .await?;
    let renewable = response.lease.as_ref().is_some_and(|l| l.renewable);
    let issued = Issued::from(response);
    table(&issued.data, Some((issued.ttl, renewable)));

    let show_hub = |when: &str| {
        let tokens = engine.hub.live_tokens();
        println!("Docker Hub fake, {when}: {} live token(s)", tokens.len());
        for t in tokens {
            println!(
                "  {}  {}  {:?}  expires {}",
                t.uuid,
                t.label,
                t.scopes,
                t.expires_at.unwrap_or_default()
            );
        }
        println!();
    };
    show_hub("after the token write");

    println!("$ lease revoke <lease_id>");
    engine.revoke(&issued.lease).await?;
    println!("All revocation operations queued successfully!\n");
    show_hub("after the revoke");
    Ok(())
}
