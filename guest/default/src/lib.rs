//! The built-in guest: the default agent, exported as a component.
use hotline_agent::Agent;

hotline_agent::export!(Agent);
