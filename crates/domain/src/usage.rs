//! Usage records: what a pipeline's LLM call used (model, workflow, tokens, finish reason,
//! the tool calls a truncation cut, the round, the time of the call), never its prompt or
//! response. Each record is an aggregate of its own, `reg.<org>.usage.<record id>`, created
//! once: a record sent again is counted once, however many batches carry it. And spend:
//! tokens times the price per token that held when the record was taken, exact.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::Invalid;
use crate::values::{Costs, Slug, WorkflowId};

/// Most tokens one record may count on either side: far above any model's window, low
/// enough that a sum over millions of records cannot overflow.
pub const MAX_TOKENS_PER_RECORD: i64 = 100_000_000;
/// Most tool-call names a record may name as truncated.
pub const MAX_TRUNCATED_TOOL_CALLS: usize = 64;
/// The highest tool-loop round a record may carry.
pub const MAX_ROUND: i64 = 100_000;

/// A usage record's id, chosen by the reporter so that a record sent again is recognised:
/// `[A-Za-z0-9_-]`, 1..=64.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RecordId(String);

impl RecordId {
    /// What [`RecordId::parse`] accepts, as a regular expression.
    pub const PATTERN: &'static str = "^[A-Za-z0-9_-]{1,64}$";

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        if !is_name(raw, 64, false) {
            return Err(Invalid::new(
                "id",
                "usage.id_invalid",
                "a usage record id is 1 to 64 characters of A-Z, a-z, 0-9, '-' and '_'",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The command id of recording this record: derived from the record id alone, so the
    /// log's message id (`<org>:<command id>:usage`) is the same for every batch that sends it.
    pub fn command_id(&self) -> String {
        format!("usage-{}", self.0)
    }
}

/// One LLM call's usage, checked. No prompt, no response, no argument of a tool call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// A custom model's slug, or a platform model id (`vendor/model`).
    pub model: String,
    pub workflow: WorkflowId,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// As the provider said it (`stop`, `length`, `max_tokens`, `MAX_TOKENS`, …).
    pub finish_reason: Option<String>,
    /// The names of the tool calls a truncation cut (names only, never arguments).
    pub truncated_tool_calls: Vec<String>,
    /// The tool-loop round of the call, when it was in one.
    pub round: Option<u32>,
    /// When the call was made, in milliseconds since the Unix epoch.
    pub called_at_ms: i64,
}

/// A record as reported, before checking.
pub struct Reported<'a> {
    pub model: &'a str,
    pub workflow: &'a str,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub finish_reason: Option<&'a str>,
    pub truncated_tool_calls: &'a [String],
    pub round: Option<i64>,
    pub called_at_ms: i64,
}

impl Record {
    /// Checks a reported record, naming every broken field (never quoting a value).
    pub fn parse(reported: &Reported<'_>) -> Result<Self, Vec<Invalid>> {
        let mut problems = Vec::new();
        let model = reported.model.trim();
        let model_ok = if model.contains('/') {
            is_name(model, 200, true)
        } else {
            Slug::parse(model).is_ok()
        };
        if !model_ok {
            problems.push(Invalid::new(
                "model",
                "usage.model_invalid",
                "model is a custom model's slug or a platform model id such as google/gemini-3.1-pro-preview",
            ));
        }
        let workflow = WorkflowId::parse(reported.workflow)
            .map_err(|_| {
                Invalid::new(
                    "workflow",
                    "usage.workflow_invalid",
                    "workflow is a workflow id: 1 to 64 characters of A-Z, a-z, 0-9, '-' and '_'",
                )
            })
            .map_err(|invalid| problems.push(invalid))
            .ok();
        let tokens = |field: &'static str, value: i64, problems: &mut Vec<Invalid>| {
            if (0..=MAX_TOKENS_PER_RECORD).contains(&value) {
                return u64::try_from(value).ok();
            }
            problems.push(Invalid::new(
                field,
                "usage.tokens_out_of_range",
                format!("{field} is a count from 0 to {MAX_TOKENS_PER_RECORD}"),
            ));
            None
        };
        let input_tokens = tokens("input_tokens", reported.input_tokens, &mut problems);
        let output_tokens = tokens("output_tokens", reported.output_tokens, &mut problems);
        let finish_reason = match reported.finish_reason.map(str::trim) {
            None | Some("") => None,
            Some(reason) if is_name(reason, 64, true) => Some(reason.to_owned()),
            Some(_) => {
                problems.push(Invalid::new(
                    "finish_reason",
                    "usage.finish_reason_invalid",
                    "finish_reason is 1 to 64 characters of A-Z, a-z, 0-9, '-', '_', '.', ':' and '/'",
                ));
                None
            }
        };
        if reported.truncated_tool_calls.len() > MAX_TRUNCATED_TOOL_CALLS
            || reported
                .truncated_tool_calls
                .iter()
                .any(|name| !is_name(name, 128, true))
        {
            problems.push(Invalid::new(
                "truncated_tool_calls",
                "usage.tool_calls_invalid",
                format!(
                    "truncated_tool_calls lists at most {MAX_TRUNCATED_TOOL_CALLS} tool names of 1 to 128 characters of A-Z, a-z, 0-9, '-', '_', '.', ':' and '/'"
                ),
            ));
        }
        let round = match reported.round {
            None => None,
            Some(round) if (0..=MAX_ROUND).contains(&round) => u32::try_from(round).ok(),
            Some(_) => {
                problems.push(Invalid::new(
                    "round",
                    "usage.round_out_of_range",
                    format!("round is from 0 to {MAX_ROUND}"),
                ));
                None
            }
        };
        if reported.called_at_ms < 0 {
            problems.push(Invalid::new(
                "called_at",
                "usage.called_at_invalid",
                "called_at is a time after 1970-01-01T00:00:00Z",
            ));
        }
        match (workflow, input_tokens, output_tokens) {
            (Some(workflow), Some(input_tokens), Some(output_tokens)) if problems.is_empty() => {
                Ok(Self {
                    model: model.to_owned(),
                    workflow,
                    input_tokens,
                    output_tokens,
                    finish_reason,
                    truncated_tool_calls: reported.truncated_tool_calls.to_vec(),
                    round,
                    called_at_ms: reported.called_at_ms,
                })
            }
            _ => Err(problems),
        }
    }

    /// Whether the call was cut: the finish reason says the output hit its limit, or a tool
    /// call's arguments were cut.
    pub fn truncated(&self) -> bool {
        matches!(
            self.finish_reason.as_deref(),
            Some("length" | "max_tokens" | "MAX_TOKENS")
        ) || !self.truncated_tool_calls.is_empty()
    }
}

/// A workflow "keeps truncating" a model when at least this many of its calls of that model
/// were truncated in the last 7 days: once is a long answer, three times is a setting.
pub const KEEPS_TRUNCATING_CALLS: u64 = 3;
/// Most tool-call names a truncation summary lists (the most frequent).
pub const MAX_SUMMARY_TOOL_CALLS: usize = 10;
/// Most workflows a truncation summary lists (those with the most truncated calls).
pub const MAX_SUMMARY_WORKFLOWS: usize = 50;

/// Whether a workflow with `truncated_calls_7d` truncated calls of a model in the last 7
/// days keeps truncating it.
pub fn keeps_truncating(truncated_calls_7d: u64) -> bool {
    truncated_calls_7d >= KEEPS_TRUNCATING_CALLS
}

/// What a model's truncated calls had in common: which rounds, which tool calls and which
/// workflows they were in (names and counts, never text).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TruncationSummary {
    /// Truncated calls counted.
    pub calls: u64,
    /// Truncated calls per tool-loop round, by round (calls without a round are left out).
    pub rounds: Vec<(u32, u64)>,
    /// Cut tool calls per name, most frequent first (then by name), at most
    /// [`MAX_SUMMARY_TOOL_CALLS`].
    pub tool_calls: Vec<(String, u64)>,
    /// Truncated calls per workflow, most first (then by id), at most
    /// [`MAX_SUMMARY_WORKFLOWS`].
    pub workflows: Vec<(WorkflowId, u64)>,
}

impl TruncationSummary {
    /// The summary of `records`; those not [`Record::truncated`] are skipped.
    pub fn of<'a>(records: impl IntoIterator<Item = &'a Record>) -> Self {
        use std::collections::BTreeMap;
        let mut calls = 0;
        let mut rounds: BTreeMap<u32, u64> = BTreeMap::new();
        let mut tools: BTreeMap<&str, u64> = BTreeMap::new();
        let mut workflows: BTreeMap<&WorkflowId, u64> = BTreeMap::new();
        for record in records.into_iter().filter(|r| r.truncated()) {
            calls += 1;
            if let Some(round) = record.round {
                *rounds.entry(round).or_default() += 1;
            }
            for name in &record.truncated_tool_calls {
                *tools.entry(name).or_default() += 1;
            }
            *workflows.entry(&record.workflow).or_default() += 1;
        }
        let mut tool_calls: Vec<(String, u64)> = tools
            .into_iter()
            .map(|(name, count)| (name.to_owned(), count))
            .collect();
        // Stable sort over name order: ties stay by name.
        tool_calls.sort_by_key(|(_, count)| std::cmp::Reverse(*count));
        tool_calls.truncate(MAX_SUMMARY_TOOL_CALLS);
        let mut workflows: Vec<(WorkflowId, u64)> = workflows
            .into_iter()
            .map(|(id, count)| (id.clone(), count))
            .collect();
        workflows.sort_by_key(|(_, count)| std::cmp::Reverse(*count));
        workflows.truncate(MAX_SUMMARY_WORKFLOWS);
        Self {
            calls,
            rounds: rounds.into_iter().collect(),
            tool_calls,
            workflows,
        }
    }
}

/// 1..=`max` bytes of `[A-Za-z0-9_-]`, and `.:/` where `punctuation`.
fn is_name(raw: &str, max: usize, punctuation: bool) -> bool {
    !raw.is_empty()
        && raw.len() <= max
        && raw.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || b == b'_'
                || b == b'-'
                || (punctuation && matches!(b, b'.' | b':' | b'/'))
        })
}

/// A recorded usage record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub record: Record,
}

pub enum Command {
    Record {
        record: Record,
        /// Whether the org has a model by that slug, or the platform catalog lists that id
        /// (looked up).
        model_known: bool,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    Recorded(Record),
}

#[derive(Debug, PartialEq, Eq)]
pub enum Rejection {
    /// Neither a custom model of the org nor a platform model.
    UnknownModel,
}

/// A record is recorded once: the same record again changes nothing.
pub fn decide(state: Option<&Usage>, command: Command) -> Result<Vec<Event>, Rejection> {
    let Command::Record {
        record,
        model_known,
    } = command;
    if state.is_some() {
        return Ok(Vec::new());
    }
    if !model_known {
        return Err(Rejection::UnknownModel);
    }
    Ok(vec![Event::Recorded(record)])
}

pub fn evolve(state: Option<Usage>, event: &Event) -> Option<Usage> {
    match event {
        Event::Recorded(record) => Some(state.unwrap_or(Usage {
            record: record.clone(),
        })),
    }
}

crate::aggregate::aggregate!(Usage, USAGE, Usage);

/// Tokens and spend of a set of records, each priced at the costs that held when it was
/// recorded. A record whose model had no price for a side it used is unpriced: its tokens
/// count, its spend is unknown (never zero).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub records: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Records that used a side their model had no price for.
    pub unpriced_records: u64,
    /// Records with `truncated()`.
    pub truncated_records: u64,
    /// The spend of the priced records, in USD, exact; `None` while no record was priced.
    spend: Option<Decimal>,
}

impl Tally {
    /// Adds one record priced at `costs`.
    pub fn add(&mut self, record: &Record, costs: &Costs) {
        self.records += 1;
        self.input_tokens = self.input_tokens.saturating_add(record.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(record.output_tokens);
        if record.truncated() {
            self.truncated_records += 1;
        }
        match spend(record, costs) {
            Some(spend) => {
                let total = self.spend.unwrap_or_default();
                self.spend = Some(total.checked_add(spend).unwrap_or(Decimal::MAX));
            }
            None => self.unpriced_records += 1,
        }
    }

    /// Whether some record could not be priced.
    pub fn unpriced(&self) -> bool {
        self.unpriced_records > 0
    }

    /// The spend of the priced records as a plain decimal string (`"0.0129"`), exact.
    pub fn spend(&self) -> Option<String> {
        self.spend.map(|spend| spend.normalize().to_string())
    }
}

/// A record's spend at `costs`: `None` when a side it used has no price. A side with no
/// tokens needs no price.
pub fn spend(record: &Record, costs: &Costs) -> Option<Decimal> {
    let side = |tokens: u64, cost: Option<crate::values::Cost>| -> Option<Decimal> {
        if tokens == 0 {
            return Some(Decimal::ZERO);
        }
        cost?.decimal().checked_mul(Decimal::from(tokens))
    };
    let input = side(record.input_tokens, costs.input_per_token)?;
    let output = side(record.output_tokens, costs.output_per_token)?;
    input.checked_add(output)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::given;
    use crate::values::Cost;

    fn reported<'a>(tools: &'a [String]) -> Reported<'a> {
        Reported {
            model: "team-gpt",
            workflow: "wf-1",
            input_tokens: 1000,
            output_tokens: 200,
            finish_reason: Some("length"),
            truncated_tool_calls: tools,
            round: Some(3),
            called_at_ms: 1_800_000_000_000,
        }
    }

    #[test]
    fn a_record_is_recorded_once_and_only_for_a_known_model() {
        let record = Record::parse(&reported(&[])).unwrap();
        let command = |known| Command::Record {
            record: record.clone(),
            model_known: known,
        };
        assert_eq!(
            decide(None, command(false)).unwrap_err(),
            Rejection::UnknownModel
        );
        let events = decide(None, command(true)).unwrap();
        assert_eq!(events, [Event::Recorded(record.clone())]);
        let state = given::<Usage>(&events);
        assert!(decide(state.as_ref(), command(true)).unwrap().is_empty());
    }

    #[test]
    fn refusals_name_the_field_and_never_quote_the_value() {
        let secret = "sk-live-0123456789abcdef";
        let tools = vec![format!("{secret} and more")];
        let bad = Reported {
            model: secret,
            workflow: "wf 1",
            input_tokens: -1,
            output_tokens: MAX_TOKENS_PER_RECORD + 1,
            finish_reason: Some("len gth"),
            truncated_tool_calls: &tools,
            round: Some(-2),
            called_at_ms: -1,
        };
        let problems = Record::parse(&bad).unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|p| p.field).collect();
        assert_eq!(
            fields,
            [
                "workflow",
                "input_tokens",
                "output_tokens",
                "finish_reason",
                "truncated_tool_calls",
                "round",
                "called_at"
            ],
            "a model reference with '-' is a well-formed slug; the rest are named"
        );
        assert!(problems.iter().all(|p| !p.message.contains("sk-live")));
        let slashes = Reported {
            model: "a/b c",
            ..reported(&[])
        };
        assert_eq!(Record::parse(&slashes).unwrap_err()[0].field, "model");
        assert_eq!(RecordId::parse("r 1").unwrap_err().code, "usage.id_invalid");
        assert_eq!(RecordId::parse("r-1").unwrap().command_id(), "usage-r-1");
    }

    #[test]
    fn spend_is_exact_and_unknown_prices_are_never_zero() {
        let record = Record::parse(&reported(&["write_file".into()])).unwrap();
        assert!(record.truncated());
        let cost = |raw| Some(Cost::parse("c", raw).unwrap());
        let priced = Costs {
            input_per_token: cost("0.000003"),
            output_per_token: cost("0.000015"),
        };
        let mut tally = Tally::default();
        tally.add(&record, &priced);
        tally.add(&record, &priced);
        // 2 × (1000 × 0.000003 + 200 × 0.000015) = 2 × 0.006
        assert_eq!(tally.spend().as_deref(), Some("0.012"));
        let half = Costs {
            input_per_token: cost("0.000003"),
            output_per_token: None,
        };
        let mut unpriced = Tally::default();
        unpriced.add(&record, &half);
        assert_eq!(unpriced.spend(), None, "never $0");
        assert!(unpriced.unpriced());
        assert_eq!((unpriced.input_tokens, unpriced.output_tokens), (1000, 200));
        let no_output = Record {
            output_tokens: 0,
            ..record
        };
        assert_eq!(
            spend(&no_output, &half).map(|d| d.normalize().to_string()),
            Some("0.003".into()),
            "a side with no tokens needs no price"
        );
    }

    #[test]
    fn a_truncation_summary_counts_rounds_tools_and_workflows() {
        // Given truncated calls in two workflows and one call that was not cut
        let record = |workflow: &str, round: Option<i64>, tools: &[&str], reason: &str| {
            let tools: Vec<String> = tools.iter().map(|t| (*t).to_owned()).collect();
            Record::parse(&Reported {
                workflow,
                round,
                finish_reason: Some(reason),
                truncated_tool_calls: &tools,
                ..reported(&[])
            })
            .unwrap()
        };
        let records = [
            record("wf-a", Some(3), &["write_file"], "length"),
            record("wf-a", Some(3), &["write_file", "edit_file"], "tool_calls"),
            record("wf-b", Some(5), &[], "max_tokens"),
            record("wf-a", None, &["apply_patch"], "length"),
            record("wf-b", Some(1), &[], "stop"),
        ];
        // When summarised
        let summary = TruncationSummary::of(&records);
        // Then the uncut call is left out, rounds are by round, tools most frequent first
        assert_eq!(summary.calls, 4);
        assert_eq!(summary.rounds, [(3, 2), (5, 1)]);
        assert_eq!(
            summary.tool_calls,
            [
                ("write_file".to_owned(), 2),
                ("apply_patch".to_owned(), 1),
                ("edit_file".to_owned(), 1)
            ]
        );
        let workflows: Vec<(&str, u64)> = summary
            .workflows
            .iter()
            .map(|(id, n)| (id.as_str(), *n))
            .collect();
        assert_eq!(workflows, [("wf-a", 3), ("wf-b", 1)]);
        // And three truncated calls in 7 days is "keeps truncating", two is not
        assert!(keeps_truncating(3));
        assert!(!keeps_truncating(2));
    }

    #[test]
    fn a_truncation_summary_is_bounded() {
        let names: Vec<String> = (0..(MAX_SUMMARY_TOOL_CALLS + 5))
            .map(|i| format!("tool_{i:02}"))
            .collect();
        let record = Record::parse(&reported(&names)).unwrap();
        let summary = TruncationSummary::of([&record, &record]);
        assert_eq!(summary.tool_calls.len(), MAX_SUMMARY_TOOL_CALLS);
        assert_eq!(summary.tool_calls[0], ("tool_00".to_owned(), 2));
    }
}
