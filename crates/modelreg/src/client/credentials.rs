//! `modelreg credentials …`: the org's saved credentials, metadata only (never a secret), and
//! whether a secret is saved already.

use api::{Credential, CredentialMatch, Items, MatchCredential, Positioned};

use super::args::{CredentialsCommand, Remote};
use super::http::{Answer, Client, segment};
use super::input::read_credential;
use super::output::{credential_summary, credential_table, show};

pub(crate) async fn run(remote: Remote, command: CredentialsCommand) -> anyhow::Result<()> {
    let client = Client::new(&remote)?;
    match command {
        CredentialsCommand::List { as_of } => {
            let answer: Answer<Items<Credential>> = client
                .get("/v1/credentials")
                .query(&api::AsOfQuery { as_of })
                .answer()
                .await?;
            show(client.json, &answer, |list| credential_table(&list.items))
        }
        CredentialsCommand::Show { id } => {
            let path = format!("/v1/credentials/{}", segment(&id));
            let answer: Answer<Positioned<Credential>> = client.get(&path).answer().await?;
            show(client.json, &answer, |credential| {
                credential_summary(&credential.value)
            })
        }
        CredentialsCommand::History { id, pages } => {
            let path = format!("/v1/credentials/{}/history", segment(&id));
            super::audit::history(&client, &path, &pages).await
        }
        CredentialsCommand::Match {
            provider,
            access_key_id,
            session_token,
            secret_stdin,
        } => {
            let body = MatchCredential {
                credential: read_credential(
                    &provider,
                    access_key_id.as_deref(),
                    session_token,
                    secret_stdin,
                    None,
                )?,
                provider,
            };
            let answer: Answer<Positioned<CredentialMatch>> = client
                .post("/v1/credentials/match")
                .body(&body)
                .answer()
                .await?;
            show(client.json, &answer, |found| {
                vec![match &found.value.reuse_available {
                    Some(saved) => format!(
                        "saved as credential {} ({}): reuse it with --credential-id {}",
                        saved.id, saved.preview, saved.id
                    ),
                    None => "not saved: no credential of the org holds this secret".to_owned(),
                }]
            })
        }
    }
}
