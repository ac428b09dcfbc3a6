//! Three lines for a script: run an `explore` subagent and print its answer.
//! Needs a model in the environment: SUBTASK_MODEL and ANTHROPIC_API_KEY or OPENAI_API_KEY.
//!
//! Run it with `cargo run --example script`.

fn main() -> Result<(), subtask::Error> {
    let answer = subtask::task(
        "explore",
        "Which file defines the Runtime type, and what does it own?",
    )?;
    println!("{answer}");
    Ok(())
}
