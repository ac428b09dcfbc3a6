//! What prompt caching saves on a 20-turn tool loop with Anthropic: the scripted server of
//! `tests/support/llm_server.rs` bills every request as the prompt-caching guide describes
//! (`tests/support/llm_rules.rs`: a prefix is read from the cache only when it matches, up
//! to a breakpoint, one an earlier request cached; writes 1.25× input, reads 0.1×), once
//! with subtask's breakpoints (the default) and once with `prompt_caching=false`.
//!
//! `cargo bench --bench prompt_caching` prints the billed input tokens and cost of both runs
//! (at claude-sonnet-5's list price) and the saving; the target is at least 70 % lower.

#[path = "../tests/support/llm_server.rs"]
mod llm_server;

#[path = "../tests/support/llm_rules.rs"]
mod llm_rules;

use serde_json::json;
use subtask::CancelToken;
use subtask::llm::{
    ChatRequest, ContentBlock, Message, ModelConfig, Role, ToolResult, ToolSpec, Usage, price_of,
};

use llm_rules::{Api, Billed, Server, Turn};
use llm_server::LlmServer;

const TURNS: usize = 20;
const MODEL: &str = "claude-sonnet-5";

fn main() {
    let with = run(true);
    let without = run(false);
    let price = price_of(MODEL).expect("a listed model");
    let cost = |billed: &[Billed]| -> f64 {
        billed
            .iter()
            .map(|b| {
                (b.input as f64 * price.input
                    + b.cache_write as f64 * price.cache_write
                    + b.cache_read as f64 * price.cache_read)
                    / 1e6
            })
            .sum()
    };
    let sum = |billed: &[Billed], pick: fn(&Billed) -> u64| billed.iter().map(pick).sum::<u64>();
    println!("prompt caching, {TURNS}-turn tool loop, {MODEL} list prices");
    println!("command: cargo bench --bench prompt_caching");
    println!(
        "{:<22} {:>12} {:>12} {:>12} {:>14} {:>16}",
        "run", "input", "cache write", "cache read", "billed input $", "subtask counted $"
    );
    for (name, (billed, counted)) in [("with breakpoints", &with), ("without", &without)] {
        println!(
            "{:<22} {:>12} {:>12} {:>12} {:>14.4} {:>16.4}",
            name,
            sum(billed, |b| b.input),
            sum(billed, |b| b.cache_write),
            sum(billed, |b| b.cache_read),
            cost(billed),
            counted.cost_usd.unwrap_or(f64::NAN) - output_cost(counted, price.output),
        );
    }
    let saving = 1.0 - cost(&with.0) / cost(&without.0);
    println!(
        "billed input cost {:.1} % lower with caching (target: >= 70 %): {}",
        saving * 100.0,
        if saving >= 0.70 { "met" } else { "NOT met" }
    );
}

fn output_cost(usage: &Usage, per_million: f64) -> f64 {
    usage.output_tokens as f64 * per_million / 1e6
}

/// One tool loop; what the server billed per request and what subtask counted in all.
fn run(caching: bool) -> (Vec<Billed>, Usage) {
    let server = LlmServer::start();
    let mut turns: Vec<Turn> = (0..TURNS - 1)
        .map(|n| {
            Turn::Calls(vec![(
                "read".into(),
                json!({"path": format!("src/file_{n}.rs")}),
            )])
        })
        .collect();
    turns.push(Turn::Text("Done.".into()));
    let api = Api::new(Server::Anthropic, turns);
    server.push(api.reply());
    let model = ModelConfig::parse(&format!("anthropic:{MODEL}?prompt_caching={caching}"))
        .unwrap()
        .api_key("sk-bench")
        .base_url(server.base_url())
        .build()
        .unwrap();
    // A system prompt and tool descriptions of a realistic size (~3,000 tokens), and tool
    // results of ~500 tokens each.
    let system = "You are a careful subagent. Follow the house rules. ".repeat(220);
    let tools: Vec<ToolSpec> = ["read", "write", "edit", "ls", "glob", "grep", "bash"]
        .iter()
        .map(|name| ToolSpec {
            name: name.to_string(),
            description: format!("The {name} tool. ").repeat(20),
            parameters: json!({"type": "object", "properties": {"path": {"type": "string"}}}),
        })
        .collect();
    let mut messages = vec![Message::user(
        "Review every file under src/ and summarise it.",
    )];
    let mut total = Usage {
        cost_usd: Some(0.0),
        ..Usage::default()
    };
    loop {
        let request = ChatRequest::new(&system, &messages).tools(&tools);
        let response = model
            .chat(&request, &CancelToken::new(), &mut |_| {})
            .expect("the scripted server answers");
        total.add(&response.usage);
        let calls: Vec<_> = response.message.tool_uses().cloned().collect();
        messages.push(response.message);
        if calls.is_empty() {
            break;
        }
        messages.push(Message {
            role: Role::User,
            content: calls
                .iter()
                .map(|call| {
                    ContentBlock::ToolResult(ToolResult {
                        tool_use_id: call.id.clone(),
                        content: "fn example() { let value = compute(); }\n".repeat(50),
                        is_error: false,
                    })
                })
                .collect(),
        });
    }

    (api.billed(), total)
}
