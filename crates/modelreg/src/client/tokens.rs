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
        TokensCommand::Issue {
            label,
            role,
            expires_in,
            expires_at,
        } => {
            let expires_at = match expires_in {
                Some(span) => Some(in_from_now(&span)?),
                None => expires_at,
            };
            let answer: Answer<Positioned<IssuedToken>> = client
                .post("/v1/tokens")
                .body(&IssueToken {
                    label,
                    role,
                    expires_at,
                })
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
            let expiry = issued
                .expires_at
                .as_ref()
                .map(|at| format!(", refused from {at} on"))
                .unwrap_or_default();
            note(&format!(
                "issued {} token {} ({}){expiry}; it is shown once, store it now:",
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

/// The time `span` (`30d`, `12h`, `90m`) from now, in RFC 3339.
fn in_from_now(span: &str) -> anyhow::Result<String> {
    let bad = || anyhow::anyhow!("--expires-in takes a number and a unit, m, h or d (e.g. 30d)");
    let span = span.trim();
    // The unit is the last character, whatever its width; the number, what comes before it.
    let unit = span.chars().last().ok_or_else(bad)?;
    let number: i64 = span[..span.len() - unit.len_utf8()]
        .parse()
        .map_err(|_| bad())?;
    let seconds_per_unit = match unit {
        'm' => 60,
        'h' => 3_600,
        'd' => 86_400,
        _ => return Err(bad()),
    };
    if number <= 0 {
        return Err(bad());
    }
    // Checked: `time::Duration::days` panics past its range.
    let seconds = number.checked_mul(seconds_per_unit).ok_or_else(bad)?;
    let duration = time::Duration::seconds(seconds);
    let at = time::OffsetDateTime::now_utc()
        .checked_add(duration)
        .ok_or_else(bad)?
        .replace_nanosecond(0)
        .map_err(|_| bad())?;
    at.format(&time::format_description::well_known::Rfc3339)
        .context("formatting the expiry")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_in_takes_a_number_and_a_unit() {
        let in_a_day = in_from_now("1d").unwrap();
        let parsed =
            time::OffsetDateTime::parse(&in_a_day, &time::format_description::well_known::Rfc3339)
                .unwrap();
        let ahead = parsed - time::OffsetDateTime::now_utc();
        assert!(ahead > time::Duration::hours(23) && ahead <= time::Duration::days(1));
        for bad in [
            "30",
            "d",
            "-1d",
            "0h",
            "3w",
            "",
            "3日",
            "1é",
            "é",
            "200000000000000d",
            "-9223372036854775808d",
            "9999999999999999999m",
            "106751991167300d",
        ] {
            assert!(in_from_now(bad).is_err(), "{bad}");
        }
    }
}
