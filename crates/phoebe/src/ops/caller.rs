//! Who is asking. Every operation runs on behalf of a [`Caller`] that the face (API, dashboard,
//! CLI) authenticated, and [`Caller::may`] is the one place that says who may do what.
//!
//! Today's rules: owners manage users and mint tokens; every member may do the rest; the local
//! command line may do everything (whoever runs `phoebe` on the server owns the data folder);
//! Phoebe itself, before anyone is authenticated, may only start up and check credentials.

use crate::domain::{Role, User};

/// On whose behalf an operation runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Caller {
    /// Phoebe itself, and requests not yet authenticated: starting up, logging in, checking a
    /// token or a session.
    System,
    /// A person signed in to the dashboard or holding an API token, with their role.
    Member {
        /// Who.
        user: User,
        /// What they may do.
        role: Role,
    },
    /// The local command line; `as_user` is whom triage is recorded as (`--by`).
    Cli {
        /// The user named with `--by`, if any.
        as_user: Option<User>,
    },
}

/// What an operation needs to be allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// See projects, keys, issues, events, users and usage.
    Read,
    /// Change issues: status, assignee, comments, merge, delete.
    Triage,
    /// Create, rename and delete projects and DSN keys; set limits.
    ManageProjects,
    /// Add, disable, enable and reset users; mint API tokens.
    ManageUsers,
}

impl Caller {
    /// Whether this caller may do what `p` covers.
    pub fn may(&self, p: Permission) -> bool {
        match self {
            Caller::System => false,
            Caller::Cli { .. } => true,
            Caller::Member { user, role } => {
                user.is_active && (*role == Role::Owner || p != Permission::ManageUsers)
            }
        }
    }

    /// The person an action is recorded as, if any.
    pub fn user(&self) -> Option<&User> {
        match self {
            Caller::Member { user, .. } => Some(user),
            Caller::Cli { as_user } => as_user.as_ref(),
            Caller::System => None,
        }
    }

    /// What to tell a caller who may not do `p`, and what to do instead.
    pub(super) fn refusal(&self, p: Permission) -> String {
        match (self, p) {
            (Caller::System, _) => "authentication required: log in, or send an API token".into(),
            (_, Permission::ManageUsers) => {
                "only owners manage users: ask an owner, or run `phoebe user ...` on the server"
                    .into()
            }
            (_, _) => "your account is disabled: ask an owner to enable it".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::UserId;

    fn member(role: Role, is_active: bool) -> Caller {
        Caller::Member {
            user: User {
                id: UserId(1),
                login: "ann".into(),
                password_hash: String::new(),
                is_active,
                email: None,
            },
            role,
        }
    }

    #[test]
    fn owners_manage_users_members_do_the_rest_and_nobody_unauthenticated_does_anything() {
        use Permission::*;
        let all = [Read, Triage, ManageProjects, ManageUsers];
        let allowed = |c: &Caller| all.iter().map(|p| c.may(*p)).collect::<Vec<_>>();
        assert_eq!(allowed(&member(Role::Owner, true)), [true; 4]);
        assert_eq!(
            allowed(&member(Role::Member, true)),
            [true, true, true, false]
        );
        assert_eq!(allowed(&member(Role::Owner, false)), [false; 4]);
        assert_eq!(allowed(&Caller::Cli { as_user: None }), [true; 4]);
        assert_eq!(allowed(&Caller::System), [false; 4]);
    }
}
