//! Connection tests against a fake provider server that speaks each provider's wire format:
//! every provider's success, invalid key, unknown model, rate limit, truncation, unreachable
//! endpoint, timeout and non-provider answer, mapped to the right class; outbound safety;
//! redaction of echoed secrets.

mod fake;
mod probes;
mod safety;
