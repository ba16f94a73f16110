//! `modelreg tokens …`: API tokens of the org. An issued token is printed once.

use anyhow::Context;
use api::{IssueToken, IssuedToken, Items, Positioned, Token};

use super::args::{Remote, TokensCommand};
use super::http::{Answer, Client, segment};
use super::output::{show, token_table};
use crate::{note, say};

pub(crate) async fn run(remote: Remote, command: TokensCommand) -> anyhow::Result<()> {
    let client = Client::new(&remote)?;
    match command {
        TokensCommand::Issue { label, role } => {
            let answer: Answer<Positioned<IssuedToken>> = client
                .post("/v1/tokens")
                .body(&IssueToken { label, role })
                .answer()
                .await?;
            if client.json {
                say(&answer.pretty()?);
                return Ok(());
            }
            let issued = &answer.value.value;
            let token = issued
                .token
                .as_ref()
                .context("the registry answered without the token (a retried request)")?;
            note(&format!(
                "issued {} token {} ({}); it is shown once, store it now:",
                issued.role, issued.token_id, issued.label
            ));
            say(token.0.expose_secret());
            Ok(())
        }
        TokensCommand::List => {
            let answer: Answer<Items<Token>> = client.get("/v1/tokens").answer().await?;
            show(client.json, &answer, |list| token_table(&list.items))
        }
        TokensCommand::Revoke { id } => {
            let path = format!("/v1/tokens/{}", segment(&id));
            let answer: Answer<Positioned<Token>> = client.delete(&path).answer().await?;
            show(client.json, &answer, |token| {
                let token = &token.value;
                vec![format!(
                    "token {} ({}) is {}",
                    token.token_id, token.label, token.state
                )]
            })
        }
    }
}
