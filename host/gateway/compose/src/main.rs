//! `dockerhub-secrets-gateway-compose <components dir> <out dir>`: writes
//! `dockerhub-secrets-gateway.wasm` (the gateway's own `wasi:keyvalue`) and
//! `dockerhub-secrets-gateway-etcd.wasm` (state in etcd) from the components `just build`
//! made. `dockerhub-secrets-gateway-compose --imports <file>` lists what a component imports,
//! `--exports <file>` what it exports.

use anyhow::Context;
use dockerhub_secrets_gateway_compose::{Parts, compose, exports, imports};
use std::path::Path;

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [flag, file] if flag == "--imports" || flag == "--exports" => {
            let bytes = read(Path::new(file))?;
            let names = match flag.as_str() {
                "--imports" => imports(&bytes)?,
                _ => exports(&bytes)?,
            };
            for name in names {
                println!("{name}");
            }
            Ok(())
        }
        [components, out] => {
            let dir = Path::new(components);
            let parts = |store| -> anyhow::Result<Parts> {
                Ok(Parts {
                    engine: read(&dir.join("dockerhub_secrets_engine.wasm"))?,
                    shims: read(&dir.join("dockerhub_secrets_gateway_shims.wasm"))?,
                    front: read(&dir.join("dockerhub_secrets_gateway_front.wasm"))?,
                    store,
                })
            };
            let out = Path::new(out);
            std::fs::create_dir_all(out)?;
            let plain = compose(&parts(None)?)?;
            let etcd_store = read(&dir.join("dockerhub_secrets_keyvalue_etcd.wasm"))?;
            let etcd = compose(&parts(Some(etcd_store))?)?;
            for (name, bytes) in [
                ("dockerhub-secrets-gateway.wasm", plain),
                ("dockerhub-secrets-gateway-etcd.wasm", etcd),
            ] {
                let path = out.join(name);
                std::fs::write(&path, bytes)
                    .with_context(|| format!("writing {}", path.display()))?;
                println!("composed {}", path.display());
            }
            Ok(())
        }
        _ => anyhow::bail!(
            "usage: dockerhub-secrets-gateway-compose <components dir> <out dir> | --imports <file> | --exports <file>"
        ),
    }
}
