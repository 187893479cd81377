//! Dashboard sessions: logging in with a password, and what a session cookie stands for.
//!
//! The cookie holds a random secret; the store keeps only its SHA-256, like API tokens. Each
//! session has its own CSRF token that every form posts back.

use super::{check_password, hash_password, random_hex, token_hash, verify_password};
use super::{Caller, Ops, OpsError, OpsResult};
use crate::domain::{Session, User};

/// How long a session lasts after logging in.
pub const SESSION_TTL_MS: i64 = 14 * 86_400_000;

/// A session just created: the secret for the cookie and its CSRF token.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// Who logged in.
    pub user: User,
    /// The cookie value (shown to the browser once; only its hash is stored).
    pub secret: String,
    /// The session's CSRF token.
    pub csrf: String,
}

/// A hash that no password matches, verified for unknown logins so that a failed login takes
/// as long whether or not the login exists (no user enumeration by timing).
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password(&random_hex(16)).unwrap_or_default())
}

impl Ops {
    /// Checks a login and password and opens a session. A wrong password, an unknown login and
    /// a disabled user all give the same answer.
    pub fn log_in(&self, login: &str, password: &str) -> OpsResult<NewSession> {
        let user = self.store.user_by_login(login.trim()).ok();
        let hash = user
            .as_ref()
            .map_or(dummy_hash(), |u| u.password_hash.as_str());
        let ok = verify_password(password, hash);
        let user = match user {
            Some(u) if ok && u.is_active => u,
            _ => return Err(OpsError::Invalid("wrong login or password".into())),
        };
        let secret = random_hex(32);
        let csrf = random_hex(16);
        let expires = chrono::Utc::now().timestamp_millis() + SESSION_TTL_MS;
        self.store
            .create_session(&token_hash(&secret), user.id, &csrf, expires)?;
        Ok(NewSession { user, secret, csrf })
    }

    /// The session a cookie secret stands for, if it is live and its user active, with the
    /// caller it makes its requests as.
    pub fn session(&self, secret: &str) -> OpsResult<Option<(Session, Caller)>> {
        match self.store.session(&token_hash(secret))? {
            Some(session) => {
                let caller = self.member(session.user.clone())?;
                Ok(Some((session, caller)))
            }
            None => Ok(None),
        }
    }

    /// Ends the session of a cookie secret.
    pub fn log_out(&self, secret: &str) -> OpsResult<()> {
        Ok(self.store.delete_session(&token_hash(secret))?)
    }

    /// Changes the caller's own password after checking the current one; every other session
    /// of theirs ends.
    pub fn change_password(&self, current: &str, new: &str, session_secret: &str) -> OpsResult<()> {
        let Caller::Member { user, .. } = &self.caller else {
            return Err(OpsError::Forbidden(
                "only a signed-in user changes their own password; use `phoebe user reset-password` on the server".into(),
            ));
        };
        if !verify_password(current, &user.password_hash) {
            return Err(OpsError::Invalid("the current password is wrong".into()));
        }
        check_password(new)?;
        self.store
            .set_password_hash(&user.login, &hash_password(new)?)?;
        self.store
            .delete_sessions_of(user.id, Some(&token_hash(session_secret)))?;
        Ok(())
    }
}
