//! The math agent: the engine behind the [`Agent`] trait.
//!
//! Instant arithmetic is answered with a direct Message whose single text
//! part is the result ("4"). Long computations (fibonacci, factorial, prime
//! factors, series) and every streamed request become a Task: `working`,
//! progress status updates, a `result` artifact, then `completed`. Text that
//! is not math leaves the task `input-required` with a hint of what the
//! agent understands (answer in the same task). Input the agent will not
//! process (malformed, over a size limit) ends the task `rejected`;
//! an evaluation error (division by zero, a domain error, the CPU-time
//! limit) ends it `failed`. The message says why in both cases.
//!
//! Every math error the agent answers with is counted in
//! `a2a_math_errors_total{kind}` ([`MathError::kind`]); the framework's
//! `a2a_errors_total{error_type}` counts JSON-RPC errors only.

use super::history::{HistoryEntry, HistoryStore};
use super::parts::{analyze_part, solve_text, PartAnalysis, PartError, PartLimits};
use super::words::{equation_text, EquationText};
use super::{parse, Answer, Budget, Limits, MathError, Query};
use crate::agent::{
    new_artifact, text_cache_key, Agent, ArtifactMode, Chunk, RequestContext, TaskUpdater,
};
use crate::card::CardBuilder;
use crate::cpu::{CpuPool, CpuSlot};
use crate::external::{wants_external, ExternalMath};
use crate::llm::{ChatMessage, LlmClient, LlmError};
use crate::protocol::types::{A2AError, AgentCard, Part, PartContent};
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Instant;

/// Whether `text` may parse as a long operation: those are named by a word
/// (a command such as `fibonacci`, a function such as `sum(…)`) or written
/// with `!`; symbols alone make arithmetic.
fn may_be_long(text: &str) -> bool {
    text.chars().any(|c| c.is_alphabetic() || c == '!')
}

/// Words of questions whose answers change between two asks.
const NON_CACHEABLE: [&str; 5] = ["now", "today", "current", "random", "time"];

/// The flagship agent: exact arithmetic, sequences, primes and series.
///
/// ```
/// use abacus::math::{Limits, MathAgent};
/// let agent = MathAgent::new(Limits::default());
/// let card = MathAgent::card();
/// assert!(card.skills.iter().any(|s| s.id == "arithmetic"));
/// # let _ = agent;
/// ```
#[derive(Clone)]
pub struct MathAgent {
    limits: Arc<Limits>,
    recent: Arc<RecentQueries>,
    part_limits: PartLimits,
    history: Option<Arc<dyn HistoryStore>>,
    external: Option<ExternalMath>,
    llm: Option<LlmClient>,
    cpu: CpuPool,
}

impl std::fmt::Debug for MathAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MathAgent")
            .field("limits", &self.limits)
            .field("history", &self.history.as_ref().map(|h| h.kind()))
            .finish()
    }
}

/// Math errors by [`MathError::kind`].
const ERRORS_METRIC: &str = "a2a_math_errors_total";

/// Counts a math error the agent answers with.
fn count_error(e: &MathError) {
    metrics::counter!(ERRORS_METRIC, "kind" => e.kind()).increment(1);
}

/// Every kind at 0, so rates and alerts work before the first error.
fn register_error_kinds() {
    // The server installs the recorder when it starts, after the agent is
    // built; counters registered before that would be lost.
    let _ = crate::telemetry::prometheus();
    for kind in MathError::KINDS {
        metrics::counter!(ERRORS_METRIC, "kind" => *kind).increment(0);
    }
}

/// How long a task answer waits for the similar-queries lookup.
const SIMILAR_LOOKUP: std::time::Duration = std::time::Duration::from_millis(250);

/// Inputs up to this length without powers or factorials are cheap enough
/// to evaluate on the reactor; anything else goes to the blocking pool.
const INLINE_MAX_LEN: usize = 64;

impl MathAgent {
    /// A math agent enforcing `limits`.
    ///
    /// Registers `a2a_math_errors_total{kind}` at 0 for every
    /// [`MathError::KINDS`], installing the process-wide Prometheus recorder
    /// ([`crate::telemetry::prometheus`]) if no recorder is installed yet.
    pub fn new(limits: Limits) -> Self {
        register_error_kinds();
        MathAgent {
            limits: Arc::new(limits),
            recent: Arc::new(RecentQueries::new()),
            part_limits: PartLimits::default(),
            history: None,
            external: None,
            llm: None,
            cpu: CpuPool::per_core(crate::config::defaults::CPU_QUEUE),
        }
    }

    /// Runs CPU-heavy questions on `pool` (default: one worker per core and
    /// the default queue): beyond its workers and queue a question is
    /// refused at once with `-32061`, so the threads serving cheap requests,
    /// health and the card are never starved.
    pub fn with_cpu_pool(mut self, pool: CpuPool) -> Self {
        self.cpu = pool;
        self
    }

    /// Asks external math services for what the local engine cannot do
    /// (integrals, derivatives, ...), falling back to local math.
    pub fn with_external(mut self, external: ExternalMath) -> Self {
        self.external = Some(external).filter(ExternalMath::is_enabled);
        self
    }

    /// Asks `llm` what neither the engine nor the external services answer
    /// (word problems) and requests for explanation; the arithmetic its
    /// answers state is checked by the engine.
    pub fn with_llm(mut self, llm: LlmClient) -> Self {
        self.llm = Some(llm);
        self
    }

    /// An answer by the LLM: streamed as artifact chunks on a stream, else
    /// whole; its arithmetic checked. When the LLM fails (its breaker is
    /// open, the provider is down), the engine answers what it can and the
    /// reply says the LLM was unavailable.
    async fn answer_with_llm(
        &self,
        llm: &LlmClient,
        ctx: &RequestContext,
        text: &str,
        up: &TaskUpdater,
        started: Instant,
    ) -> Result<(), A2AError> {
        let messages = [
            ChatMessage::system(super::llm::SYSTEM_PROMPT),
            ChatMessage::user(text),
        ];
        let by = format!("answered by the LLM ({})", llm.model());
        if !ctx.streaming && ctx.task.is_none() {
            return match llm.complete(&messages).await {
                Ok(answer) => {
                    let mut reply = answer.text.trim().to_string();
                    if let Some(note) =
                        super::llm::check_note(&super::llm::arithmetic_claims(&reply, &self.limits))
                    {
                        reply = format!("{reply}\n\n{note}");
                    }
                    self.record(ctx, text, &reply, started);
                    up.reply(up.agent_message(vec![Part::text(format!("{reply}\n\n({by})"))]))
                        .await
                }
                Err(e) => self.without_llm(ctx, text, up, e, started).await,
            };
        }
        up.start_work().await?;
        let mut tokens = match llm.stream(&messages).await {
            Ok(tokens) => tokens,
            Err(e) => return self.without_llm(ctx, text, up, e, started).await,
        };
        let mut artifact = new_artifact(Vec::new());
        artifact.name = Some("answer".into());
        artifact.description = Some(by.clone());
        let mut whole = String::new();
        // One piece is held back so that the last one can be marked.
        let mut held: Option<String> = None;
        let mut mode = ArtifactMode::New;
        while let Some(piece) = tokens.next().await {
            match piece {
                Ok(piece) => {
                    whole.push_str(&piece);
                    if let Some(prev) = held.replace(piece) {
                        artifact.parts = vec![Part::text(prev)];
                        up.artifact_chunk(artifact.clone(), mode, Chunk::More)
                            .await?;
                        mode = ArtifactMode::Append;
                    }
                }
                Err(e) => return up.fail(format!("the LLM's answer broke off: {e}")).await,
            }
        }
        let note = super::llm::check_note(&super::llm::arithmetic_claims(&whole, &self.limits));
        let last = match (held, &note) {
            (Some(prev), Some(note)) => format!("{prev}\n\n{note}"),
            (Some(prev), None) => prev,
            (None, Some(note)) => note.clone(),
            (None, None) => return up.fail("the LLM's answer is empty").await,
        };
        artifact.parts = vec![Part::text(last)];
        up.artifact_chunk(artifact, mode, Chunk::Last).await?;
        self.record(ctx, text, &whole, started);
        let summary = match note {
            Some(note) => format!("{note} ({by})"),
            None => format!("({by})"),
        };
        up.complete(Some(up.agent_message(vec![Part::text(summary)])))
            .await
    }

    /// The deterministic answer when the LLM failed: the engine's, for what
    /// it can compute of the question, else a request for a question it can.
    async fn without_llm(
        &self,
        ctx: &RequestContext,
        text: &str,
        up: &TaskUpdater,
        failure: LlmError,
        started: Instant,
    ) -> Result<(), A2AError> {
        let why = format!("the LLM was unavailable: {failure}");
        let part = super::llm::computable_part(text);
        let message = match self.evaluate_now(&part) {
            Ok(answer) => {
                self.record(ctx, text, &answer.result, started);
                format!("{} ({why}; answered by the exact engine)", answer.text)
            }
            Err(_) => {
                let hint = match parse(text, &self.limits) {
                    Err(e) => e.to_string(),
                    Ok(_) => format!("the exact engine cannot answer {text:?} alone"),
                };
                let ask = up.agent_message(vec![Part::text(format!("{hint} ({why})"))]);
                return up.require_input(Some(ask)).await;
            }
        };
        if !ctx.streaming && ctx.task.is_none() {
            return up.reply(up.agent_message(vec![Part::text(message)])).await;
        }
        up.complete(Some(up.agent_message(vec![Part::text(message)])))
            .await
    }

    /// A multi-part message: every part analysed, one artifact per part
    /// (a text summary and the structured result), and a combined summary.
    /// A part over a limit rejects the whole message: the analysis stops
    /// there and no artifact is sent; other errors are reported per part.
    async fn answer_parts(&self, ctx: &RequestContext, up: &TaskUpdater) -> Result<(), A2AError> {
        up.start_work().await?;
        let parts = ctx.message.parts.clone();
        if parts.len() > self.part_limits.max_parts {
            let e = MathError::limit(format!(
                "the message has {} parts; the maximum is {} (max_parts)",
                parts.len(),
                self.part_limits.max_parts
            ));
            count_error(&e);
            return up.reject(e.to_string()).await;
        }
        let mut analysed = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter().enumerate() {
            match self.analyze_one(part).await {
                Ok(result) => analysed.push(result),
                Err(OverLimit(reason)) => {
                    let e = MathError::limit(format!(
                        "part {} ({}) is over a limit: {reason}",
                        i + 1,
                        describe_part(part)
                    ));
                    count_error(&e);
                    return up.reject(e.to_string()).await;
                }
            }
        }
        let mut lines = Vec::with_capacity(analysed.len());
        for (i, (summary, data)) in analysed.into_iter().enumerate() {
            lines.push(format!("{}. {summary}", i + 1));
            let mut artifact = new_artifact(vec![Part::text(summary), Part::data(data)]);
            artifact.name = Some(format!("part-{}", i + 1));
            up.artifact_chunk(artifact, ArtifactMode::New, Chunk::Last)
                .await?;
        }
        let combined = format!("Multi-part message processed:\n{}", lines.join("\n"));
        up.complete(Some(up.agent_message(vec![Part::text(combined)])))
            .await
    }

    /// One part: math for text that parses as math, analysis for the rest.
    /// Errors other than a limit become the part's result.
    async fn analyze_one(&self, part: &Part) -> Result<(String, serde_json::Value), OverLimit> {
        if let Some(text) = part.as_text() {
            // Text that does not parse as math is described as text instead.
            let parsed = match parse(text, &self.limits) {
                Err(MathError::LimitExceeded(reason)) => return Err(OverLimit(reason)),
                parsed => parsed.ok(),
            };
            if let Some(query) = parsed {
                let slot = match self.cpu.reserve().await {
                    Ok(slot) => slot,
                    Err(busy) => {
                        return Ok((
                            format!("{text}: {busy}"),
                            serde_json::json!({"kind": "math", "error": busy.to_string()}),
                        ))
                    }
                };
                return match self.evaluate_blocking(slot, query, None).await {
                    Ok(a) => Ok((
                        a.text.clone(),
                        serde_json::json!({"kind": "math", "operation": a.operation.as_str(), "result": a.result}),
                    )),
                    Err(MathError::LimitExceeded(reason)) => Err(OverLimit(reason)),
                    Err(e) => {
                        count_error(&e);
                        Ok((
                            format!("{text}: {e}"),
                            serde_json::json!({"kind": "math", "error": e.to_string()}),
                        ))
                    }
                };
            }
        }
        let part = part.clone();
        let limits = self.part_limits.clone();
        // Matrices and datasets up to the limits take milliseconds: off the reactor.
        let analysis = tokio::task::spawn_blocking(move || analyze_part(&part, &limits)).await;
        Ok(match analysis {
            Ok(Ok(a)) => {
                let mut data = a.data;
                if let serde_json::Value::Object(o) = &mut data {
                    o.insert("kind".into(), a.kind.into());
                }
                (a.summary, data)
            }
            Ok(Err(PartError::TooLarge(reason))) => return Err(OverLimit(reason)),
            Ok(Err(e)) => (
                e.to_string(),
                serde_json::json!({"kind": "error", "error": e.to_string(), "error_kind": e.kind()}),
            ),
            Err(e) => (
                format!("analysis failed: {e}"),
                serde_json::json!({"kind": "error"}),
            ),
        })
    }

    /// Answers with an external service; on failure falls back to the local
    /// engine and says so.
    async fn answer_externally(
        &self,
        ext: &ExternalMath,
        ctx: &RequestContext,
        text: &str,
        up: &TaskUpdater,
        started: Instant,
    ) -> Result<(), A2AError> {
        up.start_work().await?;
        up.progress("asking external math services").await?;
        let failure = match ext.query(text).await {
            Ok(answer) => {
                self.record(ctx, text, &answer.answer, started);
                let mut artifact = new_artifact(vec![Part::text(answer.answer.clone())]);
                artifact.name = Some("result".into());
                artifact.description = Some(format!("answered by {}", answer.service));
                up.artifact_chunk(artifact, ArtifactMode::New, Chunk::Last)
                    .await?;
                let summary = format!("{} (answered by {})", answer.answer, answer.service);
                return up
                    .complete(Some(up.agent_message(vec![Part::text(summary)])))
                    .await;
            }
            Err(e) => e,
        };
        let fallback = format!("external services failed ({failure}); answered locally");
        match self.evaluate_now(text) {
            Ok(answer) => {
                self.record(ctx, text, &answer.result, started);
                let mut artifact = new_artifact(vec![Part::text(answer.result)]);
                artifact.name = Some("result".into());
                artifact.description = Some(fallback.clone());
                up.artifact_chunk(artifact, ArtifactMode::New, Chunk::Last)
                    .await?;
                let summary = format!("{} ({fallback})", answer.text);
                up.complete(Some(up.agent_message(vec![Part::text(summary)])))
                    .await
            }
            Err(e) => {
                count_error(&e);
                up.reject(format!(
                    "external services failed ({failure}) and the local engine cannot answer: {e}"
                ))
                .await
            }
        }
    }

    /// The answer to an equation typed as text: a direct reply with the
    /// solution (text and data), or, on a task, an artifact and the summary.
    async fn answer_solved(
        &self,
        ctx: &RequestContext,
        up: &TaskUpdater,
        text: &str,
        solved: PartAnalysis,
        started: Instant,
    ) -> Result<(), A2AError> {
        metrics::counter!("a2a_math_operations_total", "operation_type" => "equation").increment(1);
        self.record(ctx, text, &solved.summary, started);
        // Tagged as the multi-part artifacts are: `{"kind": "equation", …}`.
        let mut data = solved.data;
        if let Some(fields) = data.as_object_mut() {
            fields.insert("kind".into(), solved.kind.into());
        }
        let parts = vec![Part::text(solved.summary.clone()), Part::data(data)];
        if !ctx.streaming && ctx.task.is_none() {
            return up.reply(up.agent_message(parts)).await;
        }
        up.start_work().await?;
        let mut artifact = new_artifact(parts);
        artifact.name = Some("solution".into());
        up.artifact_chunk(artifact, ArtifactMode::New, Chunk::Last)
            .await?;
        let summary = up.agent_message(vec![Part::text(solved.summary)]);
        up.complete(Some(summary)).await
    }

    /// Records every answer in `history` (batched off the request path) and
    /// mentions similar earlier queries in task answers.
    pub fn with_history(mut self, history: Arc<dyn HistoryStore>) -> Self {
        self.history = Some(history);
        self
    }

    fn record(&self, ctx: &RequestContext, query: &str, result: &str, started: Instant) {
        if !self.recent.first_in_window(query) {
            return;
        }
        let self_test = ctx
            .message
            .metadata
            .as_ref()
            .is_some_and(|m| m.contains_key(crate::health::SELF_TEST_METADATA));
        if self_test {
            return;
        }
        if let Some(h) = &self.history {
            h.record(HistoryEntry::new(
                query,
                result,
                started.elapsed(),
                env!("CARGO_PKG_VERSION"),
            ));
        }
    }

    /// "(3 similar earlier queries: ...)" or nothing; never slows an answer much.
    async fn similar_note(&self, query: &str) -> String {
        let Some(h) = &self.history else {
            return String::new();
        };
        match tokio::time::timeout(SIMILAR_LOOKUP, h.similar(query, 3)).await {
            Ok(Ok(found)) if !found.is_empty() => {
                let examples: Vec<String> = found
                    .iter()
                    .map(|e| format!("\"{}\" = {}", e.query, shorten(&e.result, 40)))
                    .collect();
                format!(
                    " ({} similar earlier {}: {})",
                    found.len(),
                    if found.len() == 1 { "query" } else { "queries" },
                    examples.join("; ")
                )
            }
            _ => String::new(),
        }
    }

    /// Limits for non-text parts (sizes, matrix dimensions, URL allow-list).
    pub fn with_part_limits(mut self, limits: PartLimits) -> Self {
        self.part_limits = limits;
        self
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The math agent's card (the server fills in its URL).
    pub fn card() -> AgentCard {
        CardBuilder::new(
            "abacus math agent",
            "Exact arithmetic of any size, fibonacci, factorials, prime factorization, \
             primality, gcd/lcm and series statistics, with streamed progress.",
        )
        .provider("abacus", "https://github.com/abacus-a2a/abacus")
        .skill(
            "arithmetic",
            "Arithmetic",
            "Evaluates expressions with + - * / % ^, parentheses, functions (sqrt, ln, sin, ...) \
             and word forms; integers are exact at any size",
            &["math", "arithmetic", "calculator"],
            &["2 + 2", "2^200", "what is 15% of 200", "square root of 16"],
        )
        .skill(
            "sequences",
            "Sequences",
            "Fibonacci numbers and factorials, exact, with streamed progress",
            &["math", "fibonacci", "factorial"],
            &["fibonacci 100", "factorial 100"],
        )
        .skill(
            "primes",
            "Primes",
            "Prime factorization (Pollard rho), primality (Miller-Rabin), gcd and lcm",
            &["math", "primes", "factorization"],
            &["prime factors 600851475143", "is 97 prime", "gcd 12 18"],
        )
        .skill(
            "calculus",
            "Calculus",
            "Derivatives of elementary functions and integrals of polynomials and the standard \
             table, exact and simplified, in plain text",
            &["math", "calculus", "derivatives", "integrals"],
            &[
                "derivative of x^3",
                "integral of cos(2x)",
                "integral of x^2 from 0 to 3",
            ],
        )
        .websocket_extension()
        .skill(
            "series",
            "Series",
            "Sum and mean of a list of numbers",
            &["math", "statistics"],
            &["sum of 1, 2, 3", "mean of 2, 4, 9"],
        )
        .build()
    }

    /// The card authenticated callers get from `GetExtendedAgentCard`: the
    /// public skills and the structured parts the agent also reads.
    pub fn extended_card() -> AgentCard {
        let mut card = Self::card();
        let more = CardBuilder::new("", "")
            .skill(
                "equations",
                "Equations",
                "Solves linear and quadratic equations, the rational roots of polynomials up to \
                 degree 8 and small linear systems, typed as text (\"solve x^2 - 5x + 6 = 0\") \
                 or given as a data part {\"equation\": \"x^2 - 5x + 6 = 0\"} (or \
                 {\"equations\": [...]}), exactly",
                &["math", "algebra", "equations"],
                &[r#"{"equation": "2x + 3 = 11"}"#],
            )
            .skill(
                "matrices",
                "Matrices",
                "Shape, sum, transpose, rank, trace, determinant and inverse of a data part \
                 {\"matrix\": [[...]]}, in exact fractions",
                &["math", "linear algebra", "matrices"],
                &[r#"{"matrix": [[1, 2], [3, 4]]}"#],
            )
            .skill(
                "datasets",
                "Datasets and files",
                "Statistics of a data part {\"dataset\": [...]} or of an attached CSV or JSON \
                 file; the size and format of an attached image",
                &["statistics", "csv", "json", "image"],
                &[],
            )
            .build();
        card.skills.extend(more.skills);
        card
    }

    /// Whether the local engine answers `text`: it parses, and a calculus
    /// question (cheap, bounded) also has an answer in the table.
    fn answers_locally(&self, text: &str) -> bool {
        match parse(text, &self.limits) {
            Ok(q) if q.operation() == super::Operation::Calculus => {
                let budget = Budget::new(self.limits.cpu_time);
                q.evaluate(&self.limits, &budget, &mut |_| {}).is_ok()
            }
            Ok(_) => true,
            Err(_) => false,
        }
    }

    /// `text` parsed and evaluated here and now, within the CPU-time limit
    /// (the fallbacks' answer when a remote answer is missing).
    fn evaluate_now(&self, text: &str) -> Result<Answer, MathError> {
        let budget = Budget::new(self.limits.cpu_time);
        parse(text, &self.limits).and_then(|q| q.evaluate(&self.limits, &budget, &mut |_| {}))
    }

    fn runs_inline(text: &str, query: &Query) -> bool {
        !query.operation().is_long()
            && text.len() <= INLINE_MAX_LEN
            && !super::operators::has_power(text)
            && !text.contains('!')
    }

    /// Evaluates on the reserved CPU worker, forwarding progress lines as
    /// status updates. Dropping the returned future (cancel) stops the
    /// computation.
    async fn evaluate_blocking(
        &self,
        slot: CpuSlot,
        query: Query,
        up: Option<&TaskUpdater>,
    ) -> Result<Answer, MathError> {
        let budget = Budget::new(self.limits.cpu_time);
        let _stop_on_drop = StopOnDrop(budget.cancel_handle());
        let limits = self.limits.clone();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut work = std::pin::pin!(slot.run(move || {
            query.evaluate(&limits, &budget, &mut |line| {
                let _ = tx.send(line);
            })
        }));
        loop {
            tokio::select! {
                biased;
                Some(line) = rx.recv() => {
                    // The client may be gone; the result still counts.
                    if let Some(up) = up {
                        let _ = up.progress(line).await;
                    }
                }
                joined = &mut work => {
                    // Lines sent just before the end are still queued.
                    while let Ok(line) = rx.try_recv() {
                        if let Some(up) = up {
                            let _ = up.progress(line).await;
                        }
                    }
                    return joined.unwrap_or(Err(MathError::Cancelled));
                }
            }
        }
    }
}

/// The same question asked again within a minute is recorded in the history
/// once: repeated traffic (a dashboard, a load test) must not turn every
/// request into a database write. A fixed table of hashes, no locks; a
/// collision only means one extra or one skipped record.
struct RecentQueries {
    slots: Box<[std::sync::atomic::AtomicU64]>,
}

impl RecentQueries {
    const SLOTS: usize = 4096;

    fn new() -> Self {
        RecentQueries {
            slots: (0..Self::SLOTS)
                .map(|_| std::sync::atomic::AtomicU64::new(0))
                .collect(),
        }
    }

    /// True unless `query` was seen in the current minute.
    fn first_in_window(&self, query: &str) -> bool {
        use std::hash::Hasher;
        // Fixed keys: the same question must hash the same on every thread.
        let mut h = std::hash::DefaultHasher::new();
        h.write(query.as_bytes());
        let hash = h.finish();
        let minute = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() / 60);
        let tag = hash ^ minute.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let slot = &self.slots[(hash as usize) % Self::SLOTS];
        slot.swap(tag, std::sync::atomic::Ordering::Relaxed) != tag
    }
}

/// Cancels the computation when the agent's future is dropped.
struct StopOnDrop(super::CancelHandle);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

#[async_trait::async_trait]
impl Agent for MathAgent {
    /// Direct replies depend on the text alone, except for questions about
    /// the time or randomness. Questions answered with a task (long
    /// computations, multi-part messages) get no key: a task is never
    /// cached, so identical ones must not wait for each other in the cache.
    fn cache_key(&self, message: &crate::protocol::types::Message) -> Option<String> {
        let [part] = message.parts.as_slice() else {
            return None;
        };
        let text = part.as_text()?;
        // Asked on every request, cache hits included: plain arithmetic
        // (no word, no `!`) is neither long nor changing, so it skips both
        // the parse and the word scan.
        if may_be_long(text) {
            if parse(text, &self.limits).is_ok_and(|q| q.operation().is_long()) {
                return None;
            }
            let changing = text.split_whitespace().any(|word| {
                let bare = word.trim_matches(|c: char| !c.is_alphanumeric());
                NON_CACHEABLE.iter().any(|w| w.eq_ignore_ascii_case(bare))
            });
            if changing {
                return None;
            }
        }
        text_cache_key(message)
    }

    async fn execute(&self, ctx: RequestContext, up: TaskUpdater) -> Result<(), A2AError> {
        let started = Instant::now();
        let parts = &ctx.message.parts;
        if parts.len() > 1 || parts.iter().any(|p| p.as_text().is_none()) {
            return self.answer_parts(&ctx, &up).await;
        }
        let text = ctx.text();
        if text.trim().is_empty() {
            return up
                .reject("the math agent needs a text part with a question, e.g. \"2 + 2\"")
                .await;
        }
        // The local engine first; the external services for what it cannot do.
        if let Some(ext) = &self.external {
            if wants_external(&text) && !self.answers_locally(&text) {
                return self.answer_externally(ext, &ctx, &text, &up, started).await;
            }
        }
        if let Some(llm) = &self.llm {
            if super::llm::asks_for_explanation(&text) {
                return self.answer_with_llm(llm, &ctx, &text, &up, started).await;
            }
        }
        if let Some(equation) = equation_text(&text) {
            match solve_text(equation.text(), &self.part_limits) {
                Ok(solved) => return self.answer_solved(&ctx, &up, &text, solved, started).await,
                Err(e) if matches!(equation, EquationText::Asked(_)) => {
                    return up.reject(e.to_string()).await
                }
                // Not an equation after all: the expression parser's turn.
                Err(_) => {}
            }
        }
        let query = match parse(&text, &self.limits) {
            Ok(q) => q,
            // Not math at all: ask for a question in the same task, so the
            // user can answer with a follow-up message.
            Err(e @ MathError::NotUnderstood(_)) => {
                // Word problems and the like: the LLM's, when there is one.
                if let Some(llm) = &self.llm {
                    return self.answer_with_llm(llm, &ctx, &text, &up, started).await;
                }
                count_error(&e);
                let ask = up.agent_message(vec![Part::text(e.to_string())]);
                return up.require_input(Some(ask)).await;
            }
            Err(e) => {
                count_error(&e);
                return up.reject(e.to_string()).await;
            }
        };
        metrics::counter!("a2a_math_operations_total", "operation_type" => query.operation().as_str())
            .increment(1);

        let long = query.operation().is_long();
        let inline = Self::runs_inline(&text, &query);
        // A worker is reserved before anything is emitted: a full pool is
        // a clear -32061 at once, not a task that fails later.
        let slot = match inline {
            true => None,
            false => Some(self.cpu.reserve().await?),
        };
        if !long && !ctx.streaming && ctx.task.is_none() {
            // Quick questions get a direct answer; big arithmetic still
            // leaves the reactor for the blocking pool.
            let result = match slot {
                None => {
                    let budget = Budget::new(self.limits.cpu_time);
                    query.evaluate(&self.limits, &budget, &mut |_| {})
                }
                Some(slot) => self.evaluate_blocking(slot, query, None).await,
            };
            return match result {
                Ok(answer) => {
                    self.record(&ctx, &text, &answer.result, started);
                    up.reply(up.agent_message(vec![Part::text(answer.result)]))
                        .await
                }
                Err(e) => finish_with_error(&up, e).await,
            };
        }

        up.start_work().await?;
        let result = match slot {
            None => {
                let budget = Budget::new(self.limits.cpu_time);
                query.evaluate(&self.limits, &budget, &mut |_| {})
            }
            Some(slot) => self.evaluate_blocking(slot, query, Some(&up)).await,
        };
        match result {
            Ok(answer) => {
                // A database lookup is worth it next to a long computation,
                // not next to "2 + 2". The history is everyone's: with
                // authentication on, one caller must not read another's
                // questions in it.
                let note = if long && ctx.principal.is_anonymous() {
                    self.similar_note(&text).await
                } else {
                    String::new()
                };
                self.record(&ctx, &text, &answer.result, started);
                let mut artifact = new_artifact(vec![Part::text(answer.result)]);
                artifact.name = Some("result".into());
                up.artifact_chunk(artifact, ArtifactMode::New, Chunk::Last)
                    .await?;
                let summary = up.agent_message(vec![Part::text(answer.text + &note)]);
                up.complete(Some(summary)).await
            }
            Err(e) => finish_with_error(&up, e).await,
        }
    }
}

/// Why a part was not analysed: it is over a limit (the limit's message).
struct OverLimit(String);

/// "text", "data", "file t.csv", "url": which part a rejection is about.
fn describe_part(part: &Part) -> String {
    let kind = match &part.content {
        PartContent::Text(_) => "text",
        PartContent::Data(_) => "data",
        PartContent::Raw(_) => "file",
        PartContent::Url(_) => "url",
    };
    match &part.filename {
        Some(name) => format!("{kind} {}", shorten(name, 60)),
        None => kind.to_string(),
    }
}

fn shorten(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

async fn finish_with_error(up: &TaskUpdater, e: MathError) -> Result<(), A2AError> {
    count_error(&e);
    match e {
        MathError::Cancelled => Ok(()),
        MathError::NotUnderstood(_) | MathError::LimitExceeded(_) | MathError::Parse { .. } => {
            up.reject(e.to_string()).await
        }
        other => up.fail(other.to_string()).await,
    }
}

#[cfg(test)]
mod tests {
    use super::RecentQueries;

    #[test]
    fn questions_without_words_or_bang_are_never_long() {
        use super::{may_be_long, parse, Limits};
        let limits = Limits::default();
        for q in [
            "2 + 2",
            "2^200",
            "3² + 1",
            "√16",
            "(1 + 2) * 3",
            "100!",
            "fibonacci 30",
            "fib(20)",
            "sum(1, 2, 3)",
            "sum of 1, 2, 3",
            "mean of 2, 4",
            "prime factors 600851475143",
            "factorial 10",
            "1, 2, 3",
            "π * 2",
            "2 × 3 ÷ 4 − 1",
        ] {
            let long = parse(q, &limits).is_ok_and(|p| p.operation().is_long());
            assert!(
                !long || may_be_long(q),
                "{q} is long but would skip the parse"
            );
        }
        assert!(!may_be_long("2 + 2"));
        assert!(may_be_long("100!"));
    }

    #[test]
    fn a_repeated_question_is_recorded_once_per_window() {
        let recent = RecentQueries::new();
        assert!(recent.first_in_window("2 + 2"));
        assert!(!recent.first_in_window("2 + 2"));
        assert!(recent.first_in_window("3 + 3"));
        let other_thread =
            std::thread::scope(|s| s.spawn(|| recent.first_in_window("2 + 2")).join());
        assert_eq!(other_thread.ok(), Some(false));
    }
}
