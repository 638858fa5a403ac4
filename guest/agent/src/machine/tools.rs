//! Tools offered to the LLM and its calls answered: the built-in
//! `end_call` and `transfer_to_human`, tools a wrapper adds (answered with
//! [`Machine::tool_result`]), a cap on round trips per caller turn, and the
//! one way a call ends on the agent's terms: [`Machine::finish_with`] (say
//! something, then hang up or transfer once it has been heard).
//!
//! A round: `tool-calls` arrives while the reply streams; at its
//! `reply-text done` the built-ins are answered at once, a wrapper's calls
//! whenever it has their results; once every call has one, the assistant's
//! turn (carrying the calls) and one `tool` turn per call join the
//! conversation and a new `think` asks the LLM to go on. The reply's text
//! is still recorded only as it is heard, as a turn of its own.

use super::{Machine, State, log};
use crate::bindings::hotline::call::types::{Effect, Role, Tool, ToolCall, Transfer, Turn};

pub const END_CALL: &str = "end_call";
pub const TRANSFER_TO_HUMAN: &str = "transfer_to_human";
/// Tool round trips allowed in one caller turn: a model that keeps calling
/// tools is stopped, and the caller hears the apology.
pub const MAX_TOOL_ROUNDS: u32 = 4;
const GOODBYE: &str = "Goodbye.";
const CONNECTING: &str = "One moment, I'm connecting you.";
const NO_ARGUMENTS: &str = r#"{"type":"object","properties":{}}"#;
const UNKNOWN_TOOL: &str = r#"{"error":"unknown tool"}"#;
const DONE: &str = r#"{"ok":true}"#;

/// How a call ends once its last words are heard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    Hangup,
    Transfer { target: String, caller_id: Option<String> },
}

/// The tool side of the conversation.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tools {
    /// Tools a wrapper offered, with the built-ins, for the whole call.
    pub(crate) offered: Vec<Tool>,
    /// This round's calls, in the LLM's order, each with its result once it has one.
    pub(crate) calls: Vec<(ToolCall, Option<String>)>,
    /// The reply that made `calls` has ended (`reply-text done`).
    pub(crate) reply_done: bool,
    /// Round trips in this caller turn.
    pub(crate) rounds: u32,
    /// The call ends once what is playing has been heard.
    pub(crate) ending: Option<Ending>,
}

impl Machine {
    /// Offers `tool` to the LLM with every `think` from now on (replacing
    /// one of the same name). For wrappers: call it on `started`; answer
    /// its calls with [`Machine::tool_result`].
    pub fn offer_tool(&mut self, tool: Tool) {
        self.tools.offered.retain(|t| t.name != tool.name);
        self.tools.offered.push(tool);
    }

    /// This round's tool calls, in the LLM's order (stable until the round
    /// ends, so a position can name one, e.g. as a `fetch` id).
    pub fn open_tool_calls(&self) -> impl Iterator<Item = &ToolCall> {
        self.tools.calls.iter().map(|(call, _)| call)
    }

    /// Answers the tool call `id` with `result` (JSON for the LLM). Once
    /// every call of the round has its answer, and the reply has ended, the
    /// LLM is asked to go on. An id not open (a cancelled round) is ignored.
    pub fn tool_result(&mut self, id: &str, result: String, fx: &mut Vec<Effect>) {
        match self.tools.calls.iter_mut().find(|(call, answer)| call.id == id && answer.is_none()) {
            Some((_, answer)) => *answer = Some(result),
            None => return fx.push(log("tool_result_ignored", &[("id", id.to_string())])),
        }
        self.continue_round(fx);
    }

    /// Says `speech` (when text-to-speech is configured; else nothing), then
    /// ends the call as `then` says once everything playing has been heard:
    /// at once when nothing is. A barge-in no longer interrupts: the last
    /// words are heard. Provider work still awaited is cancelled.
    pub fn finish_with(&mut self, speech: Option<String>, then: Ending, fx: &mut Vec<Effect>) {
        if self.state == State::Ended {
            return;
        }
        if self.ai.awaiting != super::Awaiting::Nothing {
            self.stop_filler(fx);
            self.forget_provider_work(fx);
        }
        let speech = speech.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
        if let Some(text) = speech.filter(|_| self.settings.ai) {
            self.say_next(text, fx);
        }
        let kind = match &then {
            Ending::Hangup => "hangup",
            Ending::Transfer { .. } => "transfer",
        };
        fx.push(log("ending", &[("then", kind.into())]));
        self.tools.ending = Some(then);
        self.end_if_heard(fx);
    }

    /// An ending is pending: the caller is not listened to any more.
    pub fn ending(&self) -> bool {
        self.tools.ending.is_some()
    }

    /// Performs the pending ending if nothing is left to be heard.
    pub(super) fn end_if_heard(&mut self, fx: &mut Vec<Effect>) {
        let heard = self.ai.speaking.is_empty() && self.playback.segments.iter().all(|s| s.heard);
        if !heard {
            return;
        }
        match self.tools.ending.take() {
            Some(Ending::Hangup) => fx.push(Effect::Hangup),
            Some(Ending::Transfer { target, caller_id }) => fx.push(Effect::Transfer(Transfer { target, caller_id })),
            None => {}
        }
    }

    /// The tools offered with a `think`: the built-ins, then a wrapper's.
    pub(super) fn tools_offered(&self) -> Vec<Tool> {
        let builtin = |name: &str, description: &str| Tool {
            name: name.into(),
            description: description.into(),
            parameters: NO_ARGUMENTS.into(),
        };
        let mut tools = vec![builtin(END_CALL, "End the call when the caller is done; say goodbye first.")];
        if self.settings.transfer_to.is_some() {
            tools.push(builtin(TRANSFER_TO_HUMAN, "Hand the caller to a person."));
        }
        tools.extend(self.tools.offered.iter().cloned());
        tools
    }

    /// `tool-calls`: kept until the reply ends.
    pub(super) fn on_tool_calls(&mut self, calls: Vec<ToolCall>, fx: &mut Vec<Effect>) {
        if self.ai.awaiting != super::Awaiting::Reply {
            return; // a cancelled reply's
        }
        let names: Vec<&str> = calls.iter().map(|c| c.name.as_str()).collect();
        fx.push(log("tool_calls", &[("count", calls.len().to_string()), ("names", names.join(","))]));
        self.tools.calls.extend(calls.into_iter().map(|c| (c, None)));
    }

    /// The reply ended: answer its calls. False when it made none.
    pub(super) fn on_reply_done_with_tools(&mut self, fx: &mut Vec<Effect>) -> bool {
        if self.tools.calls.is_empty() {
            return false;
        }
        self.tools.reply_done = true;
        let has_words = !self.ai.speaking.is_empty() || self.playback.segments.iter().any(|s| !s.heard);
        let transfer_to = self.settings.transfer_to.clone();
        let mut ending = None;
        for (call, answer) in &mut self.tools.calls {
            let offered = self.tools.offered.iter().any(|t| t.name == call.name);
            match call.name.as_str() {
                END_CALL => {
                    ending.get_or_insert((if has_words { None } else { Some(GOODBYE) }, Ending::Hangup));
                    *answer = Some(DONE.into());
                }
                TRANSFER_TO_HUMAN if transfer_to.is_some() => {
                    let target = transfer_to.clone().unwrap_or_default();
                    ending = Some((Some(CONNECTING), Ending::Transfer { target, caller_id: None }));
                    *answer = Some(DONE.into());
                }
                _ if offered => {} // the wrapper answers
                name => {
                    fx.push(log("tool_unknown", &[("name", name.to_string())]));
                    *answer = Some(UNKNOWN_TOOL.into());
                }
            }
        }
        if let Some((speech, then)) = ending {
            self.drop_tool_round();
            self.finish_with(speech.map(str::to_string), then, fx);
            return true;
        }
        if self.tools.rounds >= MAX_TOOL_ROUNDS {
            fx.push(log("tool_rounds_exceeded", &[("rounds", self.tools.rounds.to_string())]));
            self.drop_tool_round();
            self.abandon_turn(fx);
            return true;
        }
        self.continue_round(fx);
        true
    }

    /// Every call answered and the reply over: the next `think`.
    fn continue_round(&mut self, fx: &mut Vec<Effect>) {
        let tools = &mut self.tools;
        if !tools.reply_done || tools.calls.iter().any(|(_, answer)| answer.is_none()) {
            return;
        }
        tools.rounds += 1;
        let round = std::mem::take(&mut tools.calls);
        tools.reply_done = false;
        let calls: Vec<ToolCall> = round.iter().map(|(call, _)| call.clone()).collect();
        // The reply goes on in the next answer: its marks alone do not end it.
        self.playback.reply_complete = false;
        if self.ai.speaking.is_empty() && self.playback.segments.iter().all(|s| s.heard) {
            // What was said before the calls precedes them in the history.
            self.record_heard_reply();
            self.playback.segments.clear();
            self.set_state(State::Thinking, fx);
        }
        let conversation = &mut self.ai.conversation;
        conversation.push(Turn { role: Role::Assistant, text: String::new(), tool_calls: calls, tool_call_id: None });
        for (call, answer) in round {
            let text = answer.unwrap_or_default();
            conversation.push(Turn { role: Role::Tool, text, tool_calls: Vec::new(), tool_call_id: Some(call.id) });
        }
        self.think(fx);
    }

    /// Forgets the round in progress (a cancelled turn, an ending).
    pub(super) fn drop_tool_round(&mut self) {
        self.tools.calls.clear();
        self.tools.reply_done = false;
    }
}
