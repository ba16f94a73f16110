//! `modelreg credentials …`: the org's saved credentials over their life (metadata only,
//! never a secret), and whether a secret is saved already. Secrets are read from a hidden
//! prompt or stdin, never from a flag.

use api::{
    CreateCredential, Credential, CredentialMatch, Items, MatchCredential, Positioned,
    RenameCredential, RotateCredential, Rotation,
};

use super::args::{CredentialsCommand, Remote, SecretArgs};
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
        CredentialsCommand::Add {
            name,
            provider,
            expires_at,
            secret,
        } => {
            let body = CreateCredential {
                name,
                credential: read_secret(&provider, secret)?,
                provider,
                expires_at,
            };
            let answer: Answer<Positioned<Credential>> =
                client.post("/v1/credentials").body(&body).answer().await?;
            show(client.json, &answer, |credential| {
                credential_summary(&credential.value)
            })
        }
        CredentialsCommand::Rename { id, name } => {
            let path = format!("/v1/credentials/{}", segment(&id));
            let answer: Answer<Positioned<Credential>> = client
                .patch(&path)
                .body(&RenameCredential { name })
                .answer()
                .await?;
            show(client.json, &answer, |credential| {
                credential_summary(&credential.value)
            })
        }
        CredentialsCommand::Rotate {
            id,
            retest,
            expires_at,
            secret,
        } => {
            let path = format!("/v1/credentials/{}", segment(&id));
            let shown: Answer<Positioned<Credential>> = client.get(&path).answer().await?;
            let provider = shown.value.value.provider.clone();
            let body = RotateCredential {
                credential: read_secret(&provider, secret)?,
                expires_at,
                retest,
            };
            let answer: Answer<Positioned<Rotation>> = client
                .post(&format!("{path}/rotation"))
                .body(&body)
                .answer()
                .await?;
            show(client.json, &answer, |rotation| {
                let mut lines = credential_summary(&rotation.value.credential);
                for test in &rotation.value.tests {
                    let class = test.result.as_ref().map_or("pending", |r| r.class.as_str());
                    lines.push(format!(
                        "retested {}: {class}",
                        test.model.as_deref().unwrap_or("-")
                    ));
                }
                lines
            })
        }
        CredentialsCommand::Delete { id } => {
            let path = format!("/v1/credentials/{}", segment(&id));
            let answer: Answer<Positioned<Credential>> = client.delete(&path).answer().await?;
            show(client.json, &answer, |credential| {
                credential_summary(&credential.value)
            })
        }
        CredentialsCommand::Shred { id, version } => {
            let path = format!("/v1/credentials/{}/versions/{version}", segment(&id));
            let answer: Answer<Positioned<Credential>> = client.delete(&path).answer().await?;
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

/// The secret of a credential of `provider`, from a hidden prompt or stdin.
fn read_secret(provider: &str, secret: SecretArgs) -> anyhow::Result<api::CredentialInput> {
    read_credential(
        provider,
        secret.access_key_id.as_deref(),
        secret.session_token,
        secret.secret_stdin,
        None,
    )
}
