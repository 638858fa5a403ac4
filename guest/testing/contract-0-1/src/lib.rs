//! A test guest: the default agent, built against the released
//! `hotline:call@0.1.0` contract (the `contract-0-1` feature of
//! `hotline-agent`). Its snapshots are the default agent's, so live calls
//! migrate between it and a 0.2.0 version both ways.
//!
//! The root build.rs builds it in a cargo run of its own, so the feature
//! does not reach the other guests.

use hotline_agent::Agent;

hotline_agent::export!(Agent);
