//! What only the SQLite backend has: its schema versions and their upgrades. Everything every
//! backend must do is in the conformance suite (`store::conformance`).

use super::*;

#[test]
fn newer_schema_is_refused_with_advice() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.sqlite");
    drop(SqliteStore::open(&path).unwrap());
    let c = Connection::open(&path).unwrap();
    c.pragma_update(None, "user_version", 99).unwrap();
    drop(c);
    let err = SqliteStore::open(&path).err().unwrap();
    assert!(err.to_string().contains("run a newer phoebe"), "{err}");
}
