//! The config loader: any text is a config or an error naming what is wrong, never a panic,
//! and every value it accepts can be used.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard::gateway::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(config) = Config::parse(text) else { return };
    let _ = config.unsupported_keys();
    let _ = config.redis_url();
    let _ = (config.timeout(), config.stream_timeout(), config.cooldown(), config.cache_ttl());
    let _ = (config.max_body(), config.server_limits(), config.spend_flush());
    let _ = switchyard::gateway::config::fallback_table(&config.router_settings.fallbacks);
});
