//! The bench's own `nats-server -js`: `testkit`'s private server (its own port and store dir,
//! killed on drop; never the machine's shared server on 4222), once JetStream answers.

use std::time::{Duration, Instant};

use anyhow::bail;

pub(crate) use testkit::NatsServer;

/// Starts a private `nats-server -js` and waits until JetStream answers. A missing binary
/// fails the run (testkit panics, naming the Debian package), never a silent skip: a bench
/// without its baseline measures nothing.
pub(crate) async fn start() -> anyhow::Result<NatsServer> {
    let server = NatsServer::start();
    wait_for_jetstream(&server).await?;
    Ok(server)
}

/// Polls until JetStream answers an account query, with a deadline. testkit waits for the
/// port only; the bench's first step creates a stream at once.
async fn wait_for_jetstream(server: &NatsServer) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(client) = async_nats::connect(server.url()).await
            && jetstream_answers(&client).await
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "JetStream did not answer at {} in time; nats-server's output:\n{}",
                server.url(),
                server.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// True when JetStream answers its account-info request without an error. The raw request
/// is on purpose: async-nats 0.51's `query_account` expects fields nats-server 2.9 does not
/// send (`reserved_memory`), so it fails on a healthy 2.9 server.
async fn jetstream_answers(client: &async_nats::Client) -> bool {
    match client.request("$JS.API.INFO", "".into()).await {
        Ok(reply) => {
            let text = String::from_utf8_lossy(&reply.payload);
            text.contains("\"type\":\"io.nats.jetstream.api.v1.account_info_response\"")
                && !text.contains("\"error\"")
        }
        Err(_) => false,
    }
}
