//! The gateway's store on SQLite (a temporary file) and PostgreSQL (127.0.0.1:5432, database
//! `test`, started by `.ci/run`): the same behaviour on both.

use serde_json::json;
use switchyard::gateway::guardrails::KeyGuardrails;
use switchyard::gateway::store::{KeyRecord, KeyRole, SpendRow, Store, now_ms};

const POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";

async fn stores() -> Vec<Store> {
    let path = std::env::temp_dir().join(format!("switchyard-store-{:016x}.db", fastrand::u64(..)));
    let sqlite = Store::connect(&format!("sqlite://{}", path.display())).await.unwrap_or_else(|e| panic!("{e}"));
    let postgres = Store::connect(POSTGRES).await.unwrap_or_else(|e| {
        panic!("PostgreSQL must run on 127.0.0.1:5432 with a `test` database (.ci/run starts it): {e}")
    });
    vec![sqlite, postgres]
}

fn unique(prefix: &str) -> String {
    format!("{prefix}_{:016x}", fastrand::u64(..))
}

#[tokio::test]
async fn keys_round_trip_update_and_delete() {
    for store in stores().await {
        let name = store.kind();
        let key = KeyRecord {
            id: unique("key"),
            hash: unique("hash"),
            alias: Some("ci".into()),
            team_id: None,
            models: vec!["echo".into(), "tools".into()],
            max_budget_pico: Some(5_000_000_000_000),
            budget_duration_s: Some(86_400),
            rpm: Some(60),
            tpm: None,
            max_parallel: Some(2),
            expires_at: None,
            metadata: json!({"owner": "tests"}),
            created_at: now_ms(),
            role: KeyRole::Admin,
            guardrails: KeyGuardrails { on: vec!["pii".into()], off: vec![], choose: true },
        };
        store.insert_key(&key).await.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(store.key_by_hash(&key.hash).await.ok().flatten(), Some(key.clone()), "{name}");
        assert_eq!(store.key_by_id(&key.id).await.ok().flatten(), Some(key.clone()), "{name}");
        let updated = KeyRecord { rpm: Some(10), models: vec![], role: KeyRole::User, ..key.clone() };
        assert_eq!(store.update_key(&updated).await.ok(), Some(true), "{name}");
        assert_eq!(store.key_by_id(&key.id).await.ok().flatten(), Some(updated), "{name}");
        assert!(store.list_keys().await.unwrap_or_default().iter().any(|k| k.id == key.id), "{name}");
        assert_eq!(store.delete_key(&key.id).await.ok(), Some(true), "{name}");
        assert_eq!(store.delete_key(&key.id).await.ok(), Some(false), "{name}");
        assert_eq!(store.key_by_hash(&key.hash).await.ok().flatten(), None, "{name}");
    }
}

#[tokio::test]
async fn spend_rows_are_written_once_and_summed_per_key() {
    for store in stores().await {
        let name = store.kind();
        let key_id = unique("key");
        let row = |cost: i64, at: i64| SpendRow {
            call_id: unique("call"),
            key_id: Some(key_id.clone()),
            model: "echo".into(),
            prompt_tokens: 10,
            completion_tokens: 5,
            cost_pico: cost,
            status: "success".into(),
            latency_us: 1200,
            ttft_us: Some(300),
            cache_hit: true,
            created_at: at,
            guardrails: Some(
                r#"[{"guardrail":"pii","mode":"pre_call","decision":"masked","findings":1,"latency_us":12}]"#.into(),
            ),
            ..SpendRow::default()
        };
        let now = now_ms();
        let rows = vec![row(100, now - 10_000), row(250, now), row(1000, now - 3_600_000)];
        store.write_spend(&rows).await.unwrap_or_else(|e| panic!("{name}: {e}"));
        store.write_spend(&rows[..1]).await.unwrap_or_else(|e| panic!("{name}: a repeated row is kept once: {e}"));
        assert_eq!(store.key_spend_since(&key_id, now - 60_000).await.ok(), Some(350), "{name}");
        assert_eq!(store.key_spend_since(&key_id, 0).await.ok(), Some(1350), "{name}");
        let logged = store.spend_logs(Some(&key_id), 10).await.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(logged.len(), 3, "{name}");
        assert_eq!(logged[0], rows[1], "{name}: newest first, every field back");
        store.ping().await.unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[tokio::test]
async fn bad_database_urls_are_configuration_errors() {
    let err = Store::connect("mysql://localhost/x").await.err().unwrap_or_else(|| panic!("unsupported"));
    assert!(err.to_string().contains("sqlite://"), "{err}");
    let err =
        Store::connect("postgres://postgres@127.0.0.1:1/none").await.err().unwrap_or_else(|| panic!("unreachable"));
    assert!(err.to_string().contains("cannot open the database"), "{err}");
}
