//! Routing: deployments, strategies, fallbacks and cooldowns (in progress). Policy is pure
//! code over the small shared [`state`].

pub mod policy;
pub mod state;
