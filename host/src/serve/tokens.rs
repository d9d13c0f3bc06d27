//! The tokens logins create (`auth/<mount>/login`), as OpenBao's token store keeps them for
//! the standalone server: stored under `sys/token/<sha256 of the secret>` in the encrypted
//! store (never the secret itself), loaded again after a restart, renewed up to their max
//! TTL, and ended at expiry or by `revoke-self`. **A token's end ends its leases**: every
//! lease created with it is revoked first (OpenBao's `RevokeByToken`); a lease whose
//! revocation fails stays with the lease manager, which retries it durably.

use super::leases::Leases;
use crate::storage::{Storage, StorageError};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, watch};
use vault_front::{LeaseFailure, LoginToken, Timestamp, token_hash};

/// What a login grants, before it becomes a token.
#[derive(Debug, Clone)]
pub struct Grant {
    pub mount: String,
    pub role: String,
    pub display_name: String,
    /// As the role names them; `default` is added unless `no_default_policy`.
    pub policies: Vec<String>,
    pub no_default_policy: bool,
    pub meta: std::collections::BTreeMap<String, String>,
    /// The role's `token_ttl`, `token_max_ttl`, `token_explicit_max_ttl` in seconds; 0: not
    /// set.
    pub ttl: u64,
    pub max_ttl: u64,
    pub explicit_max_ttl: u64,
}

#[derive(Default)]
struct Index {
    /// By the SHA-256 of the secret.
    tokens: HashMap<String, LoginToken>,
    /// (expiry, hash), earliest first.
    due: BTreeSet<(Timestamp, String)>,
}

impl Index {
    fn insert(&mut self, hash: &str, token: LoginToken) {
        self.remove(hash);
        self.due.insert((token.expire_time, hash.to_string()));
        self.tokens.insert(hash.to_string(), token);
    }

    fn remove(&mut self, hash: &str) -> Option<LoginToken> {
        let token = self.tokens.remove(hash)?;
        self.due.remove(&(token.expire_time, hash.to_string()));
        Some(token)
    }
}

/// The login tokens of one server.
pub struct LoginTokens {
    /// `sys/token/` of the server's store.
    storage: Arc<dyn Storage>,
    leases: Arc<Leases>,
    /// The server's max lease TTL, which also bounds every token (Vault's system max TTL).
    system_max_ttl: u64,
    index: Mutex<Index>,
    /// Held while a token changes (renewal, revocation), so the two never interleave.
    change: tokio::sync::Mutex<()>,
    wake: Notify,
}

impl LoginTokens {
    /// Load every stored token. Leases that name a token that no longer exists (it ended
    /// while the server was down, or the server stopped between ending a token and its
    /// leases) are revoked by [`LoginTokens::run`] as soon as it starts. A token of an auth
    /// mount that `mounted` no longer names (the operator removed it from the tokens file)
    /// ends at once, with its leases, as OpenBao revokes the tokens of a disabled auth mount.
    pub async fn load(
        storage: Arc<dyn Storage>,
        leases: Arc<Leases>,
        system_max_ttl: u64,
        mounted: impl Fn(&str) -> bool,
    ) -> anyhow::Result<Arc<LoginTokens>> {
        let mut index = Index::default();
        let now = Timestamp::now();
        for hash in storage.list("").await? {
            let bytes = storage.get(&hash).await?.ok_or_else(|| {
                anyhow::anyhow!("the store lists sys/token/{hash} but has none: it is damaged")
            })?;
            let mut token: LoginToken = serde_json::from_slice(&bytes)
                .map_err(|e| anyhow::anyhow!("stored token {} is corrupt: {e}", &hash))?;
            if !mounted(&token.mount) && token.expire_time > now {
                tracing::info!(accessor = %token.accessor, mount = ?token.mount, "the login token's auth mount is gone from the tokens file; ending it");
                token.expire_time = now;
            }
            index.insert(&hash, token);
        }
        tracing::info!(tokens = index.tokens.len(), "loaded login tokens");
        Ok(Arc::new(LoginTokens {
            storage,
            leases,
            system_max_ttl,
            index: Mutex::new(index),
            change: tokio::sync::Mutex::new(()),
            wake: Notify::new(),
        }))
    }

    fn index(&self) -> std::sync::MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn persist(&self, hash: &str, token: &LoginToken) -> Result<(), StorageError> {
        let bytes = serde_json::to_vec(token).expect("a token record always serializes");
        self.storage.put(hash, bytes).await
    }

    /// A new token for `grant`, stored before it is returned: its secret, its record and the
    /// TTL granted. TTLs as Vault computes a login's (`framework.CalculateTTL`): the role's
    /// TTL, else the server's max; never past the role's max TTL, its explicit max TTL or the
    /// server's max.
    pub async fn create(&self, grant: Grant) -> Result<(String, LoginToken, u64), LeaseFailure> {
        let issued = Timestamp::now();
        let or_system = |ttl: u64| if ttl == 0 { self.system_max_ttl } else { ttl };
        let mut max_ttl = or_system(grant.max_ttl).min(self.system_max_ttl);
        if grant.explicit_max_ttl > 0 {
            max_ttl = max_ttl.min(grant.explicit_max_ttl);
        }
        let ttl = or_system(grant.ttl).min(max_ttl);
        let mut policies = grant.policies;
        if !grant.no_default_policy {
            policies.push("default".into());
        }
        policies.sort();
        policies.dedup();
        let (secret, accessor) = vault_front::new_secret_and_accessor();
        let token = LoginToken {
            accessor,
            path: format!("auth/{}/login", grant.mount),
            mount: grant.mount,
            role: grant.role,
            display_name: grant.display_name,
            policies,
            meta: grant.meta,
            issue_time: issued,
            expire_time: issued.plus_secs(ttl),
            creation_ttl: ttl,
            explicit_max_ttl: grant.explicit_max_ttl,
            max_expire_time: issued.plus_secs(max_ttl),
            last_renewal: None,
        };
        let hash = token_hash(&secret);
        self.persist(&hash, &token)
            .await
            .map_err(|e| LeaseFailure::Storage(e.to_string()))?;
        self.index().insert(&hash, token.clone());
        self.wake.notify_one();
        // Escaped (`?`): the display name is a claim, and a claim must not write log lines.
        tracing::info!(accessor = %token.accessor, display_name = ?token.display_name, ttl, "login");
        Ok((secret, token, ttl))
    }

    /// The live token whose secret is `secret`.
    pub fn lookup(&self, secret: &str) -> Option<LoginToken> {
        let token = self.index().tokens.get(&token_hash(secret)).cloned()?;
        (!token.expired(Timestamp::now())).then_some(token)
    }

    /// The live token with this accessor.
    pub fn by_accessor(&self, accessor: &str) -> Option<LoginToken> {
        let now = Timestamp::now();
        let index = self.index();
        let token = index.tokens.values().find(|t| t.accessor == accessor)?;
        (!token.expired(now)).then(|| token.clone())
    }

    /// `auth/token/renew-self`: see [`LoginToken::renewed`]. `None` when the token is no
    /// longer live.
    pub async fn renew(
        &self,
        secret: &str,
        increment: u64,
    ) -> Result<Option<(LoginToken, u64, Vec<String>)>, LeaseFailure> {
        let _change = self.change.lock().await;
        let Some(token) = self.lookup(secret) else {
            return Ok(None);
        };
        let (renewed, granted, warning) = token.renewed(Timestamp::now(), increment);
        let hash = token_hash(secret);
        self.persist(&hash, &renewed)
            .await
            .map_err(|e| LeaseFailure::Storage(e.to_string()))?;
        self.index().insert(&hash, renewed.clone());
        self.wake.notify_one();
        Ok(Some((renewed, granted, warning.into_iter().collect())))
    }

    /// End the token with secret `secret` now: see [`LoginTokens::end`]. A lease whose
    /// revocation fails is no failure of this one: the token is gone, and the lease manager
    /// retries the lease (as OpenBao's `revoke-self` answers 204 and revokes the leases in
    /// the background); only a store failure, which leaves the token alive, is returned.
    pub async fn revoke(&self, secret: &str) -> Result<(), LeaseFailure> {
        let _change = self.change.lock().await;
        match self.end(&token_hash(secret)).await {
            Err(e @ LeaseFailure::Storage(_)) => Err(e),
            Err(e) => {
                tracing::warn!(error = %e, "a lease of the revoked login token is retried by the lease manager");
                Ok(())
            }
            Ok(()) => Ok(()),
        }
    }

    /// End a token: forget it, then revoke every lease created with it. The token is gone
    /// even when a lease's revocation fails: that lease stays with the lease manager, which
    /// retries it (and `sys/leases/lookup` shows the error); the failure is returned. A
    /// token that cannot be forgotten (a store failure) stays, and so do its leases.
    async fn end(&self, hash: &str) -> Result<(), LeaseFailure> {
        let Some(token) = self.index().tokens.get(hash).cloned() else {
            return Ok(());
        };
        self.storage
            .delete(hash)
            .await
            .map_err(|e| LeaseFailure::Storage(e.to_string()))?;
        self.index().remove(hash);
        tracing::info!(accessor = %token.accessor, "revoked login token");
        self.leases.revoke_token(&token.accessor).await.map(|_| ())
    }

    /// End tokens as they expire, until `stop` turns true. First revokes the leases of
    /// tokens that no longer exist.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let live: std::collections::HashSet<String> = self
            .index()
            .tokens
            .values()
            .map(|t| t.accessor.clone())
            .collect();
        for accessor in self.leases.token_accessors() {
            if !live.contains(&accessor) {
                tracing::info!(%accessor, "revoking the leases of a login token that ended");
                if let Err(e) = self.leases.revoke_token(&accessor).await {
                    tracing::warn!(error = %e, "revoking a lease of an ended token failed; the lease manager retries it");
                }
            }
        }
        loop {
            let (due, next) = {
                let index = self.index();
                let now = Timestamp::now();
                let due: Vec<String> = index
                    .due
                    .iter()
                    .take_while(|(at, _)| *at <= now)
                    .map(|(_, hash)| hash.clone())
                    .collect();
                let next = index.due.iter().map(|(at, _)| *at).find(|at| *at > now);
                (due, next)
            };
            for hash in due {
                let _change = self.change.lock().await;
                // Renewed meanwhile: no longer due.
                let still_due = self
                    .index()
                    .tokens
                    .get(&hash)
                    .is_some_and(|t| t.expired(Timestamp::now()));
                if !still_due {
                    continue;
                }
                if let Err(e) = self.end(&hash).await {
                    tracing::warn!(error = %e, "ending an expired login token left work for the lease manager");
                    if let LeaseFailure::Storage(_) = e {
                        // The token is still stored: try again shortly, not in a busy loop.
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
            let sleep = match next {
                Some(at) => at.since(Timestamp::now()).max(Duration::from_millis(50)),
                None => Duration::from_secs(3600),
            };
            tokio::select! {
                _ = stop.changed() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(sleep) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryStorage;
    use crate::engine::stub::{Answer, StubSandbox};
    use crate::engine::{Engine, EngineError, FixedLimit, Lease, Operation};

    struct World {
        tokens: Arc<LoginTokens>,
        leases: Arc<Leases>,
        token_storage: Arc<MemoryStorage>,
        lease_storage: Arc<MemoryStorage>,
        stub: Arc<StubSandbox>,
    }

    async fn world_over(
        token_storage: Arc<MemoryStorage>,
        lease_storage: Arc<MemoryStorage>,
    ) -> World {
        let stub = StubSandbox::new();
        let leases = Leases::load(
            lease_storage.clone(),
            Arc::new(MemoryStorage::new()),
            Arc::new(Engine::new(stub.clone())),
            "dockerhub",
            Arc::new(FixedLimit(Some(3600))),
        )
        .await
        .unwrap();
        let tokens = LoginTokens::load(token_storage.clone(), leases.clone(), 3600, |mount| {
            mount == "jwt"
        })
        .await
        .unwrap();
        World {
            tokens,
            leases,
            token_storage,
            lease_storage,
            stub,
        }
    }

    async fn world() -> World {
        world_over(
            Arc::new(MemoryStorage::new()),
            Arc::new(MemoryStorage::new()),
        )
        .await
    }

    fn grant(ttl: u64, max_ttl: u64, explicit_max_ttl: u64) -> Grant {
        Grant {
            mount: "jwt".into(),
            role: "ci".into(),
            display_name: "jwt-acme/app".into(),
            policies: vec!["ci".into()],
            no_default_policy: false,
            meta: [("role".to_string(), "ci".to_string())].into(),
            ttl,
            max_ttl,
            explicit_max_ttl,
        }
    }

    async fn lease_of(world: &World, accessor: &str) -> vault_front::LeaseRecord {
        let lease = Lease {
            ttl: 300,
            max_ttl: 3600,
            renewable: true,
            internal_data: r#"{"uuid":"u-1"}"#.into(),
        };
        world
            .leases
            .create(
                "token/hoeg/hoeg",
                &lease,
                Timestamp::now(),
                Some(accessor.into()),
            )
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_logins_ttls_are_the_roles_within_the_servers_max() {
        let w = world().await;
        let ttl = |g: Grant| {
            let tokens = w.tokens.clone();
            async move {
                let (_, token, ttl) = tokens.create(g).await.unwrap();
                let max = token.max_expire_time.since(token.issue_time).as_secs();
                (ttl, max)
            }
        };
        assert_eq!(ttl(grant(60, 120, 0)).await, (60, 120));
        assert_eq!(ttl(grant(0, 0, 0)).await, (3600, 3600), "the server's max");
        assert_eq!(
            ttl(grant(7200, 9000, 0)).await,
            (3600, 3600),
            "capped by it"
        );
        assert_eq!(ttl(grant(60, 120, 90)).await, (60, 90), "explicit max");
        assert_eq!(ttl(grant(600, 120, 0)).await, (120, 120), "ttl within max");
        let (_, token, _) = w.tokens.create(grant(60, 0, 0)).await.unwrap();
        assert_eq!(token.policies, ["ci", "default"]);
        let mut no_default = grant(60, 0, 0);
        no_default.no_default_policy = true;
        let (_, token, _) = w.tokens.create(no_default).await.unwrap();
        assert_eq!(token.policies, ["ci"]);
    }

    #[tokio::test]
    async fn only_a_hash_of_the_secret_is_stored_and_a_restart_keeps_the_token() {
        let w = world().await;
        let (secret, token, _) = w.tokens.create(grant(60, 0, 0)).await.unwrap();
        let keys = w.token_storage.list("").await.unwrap();
        assert_eq!(keys, [token_hash(&secret)]);
        let stored = w.token_storage.get(&keys[0]).await.unwrap().unwrap();
        assert!(!String::from_utf8_lossy(&stored).contains(&secret));
        let again = world_over(w.token_storage.clone(), w.lease_storage.clone()).await;
        assert_eq!(again.tokens.lookup(&secret), Some(token));
        assert_eq!(again.tokens.lookup("s.other"), None);
    }

    #[tokio::test]
    async fn an_expired_token_ends_with_its_leases() {
        let w = world().await;
        let (secret, token, _) = w.tokens.create(grant(1, 0, 0)).await.unwrap();
        let lease = lease_of(&w, &token.accessor).await;
        let (stop, stopped) = watch::channel(false);
        let timers = tokio::spawn(w.tokens.clone().run(stopped));
        tokio::time::sleep(Duration::from_millis(1600)).await;
        assert_eq!(w.tokens.lookup(&secret), None);
        assert!(w.token_storage.list("").await.unwrap().is_empty());
        assert_eq!(w.leases.lookup(&lease.lease_id), None);
        let revoke = w.stub.last_request().unwrap();
        assert_eq!(revoke.operation, Operation::Revoke);
        stop.send_replace(true);
        timers.await.unwrap();
    }

    #[tokio::test]
    async fn a_renewed_token_is_not_ended_at_its_old_expiry() {
        let w = world().await;
        let (secret, _, _) = w.tokens.create(grant(1, 60, 0)).await.unwrap();
        let (stop, stopped) = watch::channel(false);
        let timers = tokio::spawn(w.tokens.clone().run(stopped));
        let (renewed, granted, warnings) = w.tokens.renew(&secret, 30).await.unwrap().unwrap();
        assert_eq!((granted, warnings.len()), (30, 0));
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(w.tokens.lookup(&secret), Some(renewed));
        stop.send_replace(true);
        timers.await.unwrap();
        assert_eq!(w.tokens.renew("s.unknown", 30).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_revoked_token_is_gone_even_when_its_leases_must_be_retried() {
        let w = world().await;
        let (secret, token, _) = w.tokens.create(grant(60, 0, 0)).await.unwrap();
        let lease = lease_of(&w, &token.accessor).await;
        w.stub
            .answer(Answer::Error(EngineError::Internal("hub down".into())));
        // Done, as far as the client goes: the token is gone, the lease is retried.
        w.tokens.revoke(&secret).await.unwrap();
        assert_eq!(w.tokens.lookup(&secret), None);
        let kept = w.leases.lookup(&lease.lease_id).expect("kept for a retry");
        let revocation = kept.revocation.unwrap();
        assert_eq!(revocation.attempts, 1);
        assert!(revocation.last_error.contains("hub down"), "{revocation:?}");
    }

    #[tokio::test]
    async fn leases_of_a_token_that_ended_while_the_server_was_down_are_revoked_at_start() {
        let w = world().await;
        let (secret, token, _) = w.tokens.create(grant(60, 0, 0)).await.unwrap();
        let orphan = lease_of(&w, &token.accessor).await;
        let (_, live, _) = w.tokens.create(grant(60, 0, 0)).await.unwrap();
        let kept = lease_of(&w, &live.accessor).await;
        // The server stopped after forgetting the token, before ending its leases.
        w.token_storage.delete(&token_hash(&secret)).await.unwrap();
        let again = world_over(w.token_storage.clone(), w.lease_storage.clone()).await;
        let (stop, stopped) = watch::channel(false);
        let timers = tokio::spawn(again.tokens.clone().run(stopped));
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(again.leases.lookup(&orphan.lease_id), None);
        assert!(again.leases.lookup(&kept.lease_id).is_some());
        stop.send_replace(true);
        timers.await.unwrap();
    }

    #[tokio::test]
    async fn a_token_whose_auth_mount_left_the_tokens_file_ends_at_start_with_its_leases() {
        let w = world().await;
        let mut elsewhere = grant(600, 0, 0);
        elsewhere.mount = "gitlab".into();
        let (gone, token, _) = w.tokens.create(elsewhere).await.unwrap();
        let lease = lease_of(&w, &token.accessor).await;
        let (kept, _, _) = w.tokens.create(grant(600, 0, 0)).await.unwrap();
        // Restarted with a tokens file that declares `jwt` only.
        let again = world_over(w.token_storage.clone(), w.lease_storage.clone()).await;
        assert_eq!(again.tokens.lookup(&gone), None, "unusable at once");
        assert!(again.tokens.lookup(&kept).is_some());
        let (stop, stopped) = watch::channel(false);
        let timers = tokio::spawn(again.tokens.clone().run(stopped));
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            again.leases.lookup(&lease.lease_id),
            None,
            "its lease ended"
        );
        assert!(
            !again
                .token_storage
                .list("")
                .await
                .unwrap()
                .contains(&token_hash(&gone))
        );
        stop.send_replace(true);
        timers.await.unwrap();
    }
}
