//! The gateway component: the engine, composed with the front that serves Vault's HTTP API,
//! the shims that answer the engine's non-standard imports and guard its way out, and, in the
//! etcd variant, the store that keeps state in etcd.
//!
//! ```text
//!            wasi:http/incoming-handler (exported)
//!                       │
//!                     front ── backend ──► engine ── outgoing-handler ──► shims (egress guard)
//!                       │                    │  └── logging, lease-limits, identity, call-limits ─► shims
//!                       └── keyvalue ◄───────┘
//!                             │
//!          the gateway's own wasi:keyvalue, or keyvalue-etcd (over the gateway's wasi:http)
//! ```
//!
//! Composed with the Bytecode Alliance's `wac-graph`: every component is embedded as it was
//! built, so the engine inside is byte for byte the one the other hosts run; what no
//! component supplies becomes an import of the whole, and [`imports`] lists those.

use anyhow::{Context, bail};
use wac_graph::types::{ItemKind, Package};
use wac_graph::{CompositionGraph, EncodeOptions, NodeId, PackageId};

/// The interface the composed component exports: a `wasi:http` request handler.
pub const INCOMING_HANDLER: &str = "wasi:http/incoming-handler@0.2.12";
const OUTGOING_HANDLER: &str = "wasi:http/outgoing-handler@0.2.12";
const BACKEND: &str = "dockerhub-secrets:engine/backend@0.5.0";
const TYPES: &str = "dockerhub-secrets:engine/types@0.5.0";
const KEYVALUE: [&str; 2] = [
    "wasi:keyvalue/store@0.2.0-draft",
    "wasi:keyvalue/atomics@0.2.0-draft",
];
/// What the shims give the engine.
const SHIMMED: [&str; 7] = [
    "wasi:logging/logging@0.1.0-draft",
    "dockerhub-secrets:engine/lease-limits@0.5.0",
    "dockerhub-secrets:engine/identity@0.5.0",
    "dockerhub-secrets:engine/mount@0.5.0",
    "dockerhub-secrets:engine/call-limits@0.5.0",
    TYPES,
    OUTGOING_HANDLER,
];

/// The built components, as bytes.
pub struct Parts {
    pub engine: Vec<u8>,
    pub shims: Vec<u8>,
    pub front: Vec<u8>,
    /// `Some` for the etcd variant: the store component; `None` to import the gateway's own
    /// `wasi:keyvalue`.
    pub store: Option<Vec<u8>>,
}

/// Compose the gateway component.
///
/// # Errors
/// When a component does not parse, lacks an export the composition needs, or the result
/// does not validate.
pub fn compose(parts: &Parts) -> anyhow::Result<Vec<u8>> {
    let mut graph = CompositionGraph::new();
    let register = |graph: &mut CompositionGraph, name: &str, bytes: &[u8]| {
        let package = Package::from_bytes(name, None, bytes.to_vec(), graph.types_mut())
            .with_context(|| format!("reading the {name} component"))?;
        graph
            .register_package(package)
            .with_context(|| format!("registering the {name} component"))
    };
    let engine = register(&mut graph, "dockerhub-secrets:engine", &parts.engine)?;
    let shims = register(&mut graph, "dockerhub-secrets:gateway-shims", &parts.shims)?;
    let front = register(&mut graph, "dockerhub-secrets:gateway-front", &parts.front)?;
    let store = match &parts.store {
        Some(bytes) => Some(register(
            &mut graph,
            "dockerhub-secrets:keyvalue-etcd",
            bytes,
        )?),
        None => None,
    };

    let shims = graph.instantiate(shims);
    let store = store.map(|store| graph.instantiate(store));
    let engine = graph.instantiate(engine);
    let front = graph.instantiate(front);
    for name in SHIMMED {
        connect_if_imported(&mut graph, shims, engine, name)?;
    }
    connect(&mut graph, shims, front, TYPES)?;
    connect(&mut graph, engine, front, BACKEND)?;
    if let Some(store) = store {
        for name in KEYVALUE {
            connect_if_imported(&mut graph, store, engine, name)?;
            connect_if_imported(&mut graph, store, front, name)?;
        }
    }
    let handler = graph
        .alias_instance_export(front, INCOMING_HANDLER)
        .context("the front exports no wasi:http/incoming-handler")?;
    graph.export(handler, INCOMING_HANDLER)?;
    graph
        .encode(EncodeOptions::default())
        .context("encoding the composed component")
}

fn connect(
    graph: &mut CompositionGraph,
    from: NodeId,
    to: NodeId,
    name: &str,
) -> anyhow::Result<()> {
    let export = graph
        .alias_instance_export(from, name)
        .with_context(|| format!("{name} is not exported where the composition expects it"))?;
    graph
        .set_instantiation_argument(to, name, export)
        .with_context(|| format!("{name} cannot be given where the composition expects it"))
}

/// Connect `name` only where the importer imports it (the engine needs no atomics; a test
/// component in the engine's place may need less than the engine).
fn connect_if_imported(
    graph: &mut CompositionGraph,
    from: NodeId,
    to: NodeId,
    name: &str,
) -> anyhow::Result<()> {
    let package: PackageId = graph[to]
        .package()
        .context("an instantiation has a package")?;
    let world = graph.types()[graph[package].ty()].clone();
    if world.imports.contains_key(name) {
        connect(graph, from, to, name)?;
    }
    Ok(())
}

/// The names in a component's own world type: its imports, or the instances and functions
/// it exports, sorted.
fn world_names(bytes: &[u8], exported: bool) -> anyhow::Result<Vec<String>> {
    let mut graph = CompositionGraph::new();
    let package = Package::from_bytes(
        "inspected:component",
        None,
        bytes.to_vec(),
        graph.types_mut(),
    )?;
    let world = &graph.types()[package.ty()];
    let items = if exported {
        &world.exports
    } else {
        &world.imports
    };
    let mut names: Vec<String> = items
        .iter()
        .filter(|(_, kind)| !exported || matches!(kind, ItemKind::Instance(_) | ItemKind::Func(_)))
        .map(|(name, _)| name.clone())
        .collect();
    names.sort();
    Ok(names)
}

/// The names a component imports (`wasi:http/types@0.2.12`, ...), from its own type.
///
/// # Errors
/// When the bytes are not a component.
pub fn imports(bytes: &[u8]) -> anyhow::Result<Vec<String>> {
    world_names(bytes, false)
}

/// The names a component exports.
///
/// # Errors
/// When the bytes are not a component, or it exports nothing.
pub fn exports(bytes: &[u8]) -> anyhow::Result<Vec<String>> {
    let names = world_names(bytes, true)?;
    if names.is_empty() {
        bail!("the component exports nothing");
    }
    Ok(names)
}
