//! `modelreg credentials …`: the org's saved credentials, metadata only (never a secret).

use api::{Credential, Items};

use super::args::{CredentialsCommand, Remote};
use super::http::{Answer, Client};
use super::output::{credential_table, show};

pub(crate) async fn run(remote: Remote, command: CredentialsCommand) -> anyhow::Result<()> {
    let client = Client::new(&remote)?;
    match command {
        CredentialsCommand::List => {
            let answer: Answer<Items<Credential>> = client.get("/v1/credentials").answer().await?;
            show(client.json, &answer, |list| credential_table(&list.items))
        }
    }
}
