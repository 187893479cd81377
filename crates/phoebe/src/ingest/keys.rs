//! The in-memory map from DSN public key to project, so authentication never touches the
//! database on the hot path. A miss asks the store for that one key, so keys made by
//! `phoebe project create` while the server runs work at once; unknown keys are remembered for a
//! second (in a bounded map) so a flood of random keys cannot become a flood of queries.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use crate::domain::{OrgId, Project, ProjectId, ProjectKey, PublicKey};
use crate::quota::Grant;
use crate::store::Directory;

/// What ingest needs to know about a key.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KeyInfo {
    /// Disabled keys get 403.
    pub is_active: bool,
    /// Who is sending (key, project, organization), for routing checks and rate limits.
    pub grant: Grant,
}

impl KeyInfo {
    fn new(k: &ProjectKey, p: Option<&Project>) -> KeyInfo {
        KeyInfo {
            is_active: k.is_active,
            grant: Grant {
                key_id: k.id,
                project_id: k.project_id,
                org_id: p.map_or(OrgId(0), |p| p.org_id),
                key_limits: k.limits,
                project_limits: p.map(|p| p.limits).unwrap_or_default(),
            },
        }
    }
}

/// Public key → project, filled from the store on a miss.
pub struct KeyCache {
    store: Arc<dyn Directory>,
    keys: RwLock<HashMap<PublicKey, KeyInfo>>,
    unknown: Mutex<HashMap<String, Instant>>,
}

const NEGATIVE_TTL: Duration = Duration::from_secs(1);

/// How often a running server reloads every key, so disabling one takes effect without a restart.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(5);
const MAX_NEGATIVE: usize = 10_000;

impl KeyCache {
    /// Loads every key.
    pub fn new(store: Arc<dyn Directory>) -> anyhow::Result<KeyCache> {
        let cache = KeyCache {
            store,
            keys: RwLock::new(HashMap::new()),
            unknown: Mutex::new(HashMap::new()),
        };
        cache.reload()?;
        Ok(cache)
    }

    /// Replaces the cache with the store's current keys and limits (blocking).
    pub fn reload(&self) -> anyhow::Result<()> {
        let projects: HashMap<ProjectId, Project> = self
            .store
            .projects()?
            .into_iter()
            .map(|p| (p.id, p))
            .collect();
        let map = self
            .store
            .all_keys()?
            .into_iter()
            .map(|k| {
                let info = KeyInfo::new(&k, projects.get(&k.project_id));
                (k.public_key, info)
            })
            .collect();
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = map;
        Ok(())
    }

    /// The cached answer only (no I/O).
    pub fn lookup_cached(&self, public_key: &str) -> Option<KeyInfo> {
        self.keys
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(public_key)
            .copied()
    }

    /// Looks a key up, asking the store on a miss: call it off the async runtime.
    pub fn lookup_blocking(&self, public_key: &str) -> Option<KeyInfo> {
        if let Some(info) = self.lookup_cached(public_key) {
            return Some(info);
        }
        {
            let unknown = self.unknown.lock().unwrap_or_else(|p| p.into_inner());
            if unknown
                .get(public_key)
                .is_some_and(|t| t.elapsed() < NEGATIVE_TTL)
            {
                return None;
            }
        }
        // A key of another form names no key of ours.
        let Ok(parsed) = PublicKey::parse(public_key) else {
            return None;
        };
        match self.store.key_by_public(&parsed) {
            Ok(Some(k)) => {
                let project = self.store.project(k.project_id).ok();
                let info = KeyInfo::new(&k, project.as_ref());
                self.keys
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(k.public_key, info);
                Some(info)
            }
            Ok(None) => {
                let mut unknown = self.unknown.lock().unwrap_or_else(|p| p.into_inner());
                if unknown.len() >= MAX_NEGATIVE {
                    unknown.clear();
                }
                unknown.insert(public_key.to_string(), Instant::now());
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "looking up a DSN key failed");
                None
            }
        }
    }
}
