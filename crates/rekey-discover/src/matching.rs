//! Matching finds against the inventory: by the public identifier a kind's fields hold (an
//! `access_key_id`, a GCP `key_id`, a GitHub or npm login, a Hugging Face token name, a
//! database role; with `--online`, the `owner` the provider named), else by a keyed
//! fingerprint: one an earlier `discovered:` entry ties to a credential (the same value on
//! another machine, or a draft someone confirmed), or one the audit log recorded when rekey
//! minted a credential's value.

use std::collections::BTreeMap;

use rekey_spec::{Credential, CredentialKind, Inventory};
use serde::Serialize;

use crate::{Class, Find, Status};

/// How many finds of each status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub known: usize,
    pub unknown: usize,
    pub short_lived: usize,
    pub outside: usize,
}

/// The one credential of `kind` whose `field` is `value`; none when several are (a login
/// with two PATs cannot say which one this is: the fingerprint must).
fn unique<'a>(
    inv: &'a Inventory,
    kind: CredentialKind,
    field: &str,
    value: Option<&String>,
) -> Option<&'a Credential> {
    let value = value?;
    let mut it = inv
        .credentials
        .iter()
        .filter(|c| c.kind == kind && c.field(field) == Some(value.as_str()));
    let first = it.next()?;
    it.next().is_none().then_some(first)
}

fn by_public_id(inv: &Inventory, kind: CredentialKind, f: &Find) -> Option<(String, &'static str)> {
    use CredentialKind as K;
    let id = |k: &str| f.ids.get(k);
    let hit = |c: Option<&Credential>, by: &'static str| c.map(|c| (c.id.clone(), by));
    match kind {
        K::AwsIamAccessKey => hit(
            unique(inv, kind, "access_key_id", id("access_key_id")),
            "access_key_id",
        )
        .or_else(|| {
            // `--online`: STS named the key's user (`arn:aws:iam::ACCOUNT:user/PATH/NAME`).
            // Only an entry that names no key id is this key: one that names another is a
            // second key of that user, which the inventory does not know.
            let user = id("owner")?
                .split_once(":user/")?
                .1
                .rsplit('/')
                .next()?
                .to_owned();
            let c = unique(inv, kind, "user_name", Some(&user))
                .filter(|c| c.field("access_key_id").is_none_or(str::is_empty));
            hit(c, "user_name")
        }),
        K::GcpServiceAccountKey => hit(unique(inv, kind, "key_id", id("key_id")), "key_id"),
        K::GithubClassicPat | K::GithubFineGrainedPat => hit(
            unique(
                inv,
                kind,
                "github_user",
                id("owner").or_else(|| id("login")),
            ),
            "github_user",
        ),
        K::NpmGranularToken | K::NpmClassicToken => {
            let login = id("owner").or_else(|| id("login"))?;
            let registry = id("registry").map_or("https://registry.npmjs.org/", String::as_str);
            let norm = |r: &str| r.trim_end_matches('/').to_owned();
            let mut it = inv.credentials.iter().filter(|c| {
                c.kind == kind
                    && c.field("npm_user") == Some(login.as_str())
                    && norm(c.field("registry").unwrap_or("https://registry.npmjs.org/"))
                        == norm(registry)
            });
            let first = it.next()?;
            it.next()
                .is_none()
                .then(|| (first.id.clone(), "npm_user and registry"))
        }
        K::HuggingfaceToken => hit(
            unique(inv, kind, "token_name", id("token_name")),
            "token_name",
        )
        .or_else(|| hit(unique(inv, kind, "hf_user", id("owner")), "hf_user")),
        K::PostgresPassword => hit(unique(inv, kind, "role", id("user")), "role"),
        K::MysqlPassword => hit(unique(inv, kind, "user", id("user")), "user"),
        K::GithubAppPrivateKey | K::OauthClientSecret => None,
    }
}

/// Marks each find known (with its credential) or leaves it unknown; records the other hosts
/// where discovery saw the same value.
///
/// `minted`: fingerprint → credential, from the audit log's records of the values rekey
/// minted (empty without a state database).
pub fn match_inventory(
    inv: &Inventory,
    host: &str,
    minted: &BTreeMap<String, String>,
    finds: &mut [Find],
) -> Summary {
    let mut s = Summary::default();
    for f in finds.iter_mut() {
        if let Some(fp) = &f.fingerprint {
            for d in &inv.discovered {
                if d.fingerprint.as_ref() == Some(fp)
                    && d.host != host
                    && !f.also_on.contains(&d.host)
                {
                    f.also_on.push(d.host.clone());
                }
            }
        }
        if f.class.inventoried() {
            let by_id = match f.class {
                Class::Kind(kind) => by_public_id(inv, kind, f),
                _ => None,
            };
            // A fingerprint names a credential only of the find's own kind (an unknown
            // format may be any): the written entry must agree with it.
            let fits = |id: &str| {
                inv.credential(id).is_some_and(|c| match f.class {
                    Class::Kind(k) => c.kind == k,
                    _ => true,
                })
            };
            let by_fp = || {
                let fp = f.fingerprint.as_ref()?;
                inv.discovered
                    .iter()
                    .filter(|d| d.fingerprint.as_ref() == Some(fp))
                    .filter_map(|d| d.credential.clone())
                    .find(|c| fits(c))
                    .map(|c| (c, "fingerprint"))
                    .or_else(|| {
                        minted
                            .get(fp)
                            .filter(|c| fits(c))
                            .map(|c| (c.clone(), "fingerprint in the audit log"))
                    })
            };
            if let Some((c, by)) = by_id.or_else(by_fp) {
                f.credential = Some(c);
                f.matched_by = Some(by.to_owned());
                f.status = Status::Known;
            }
        }
        match f.status {
            Status::Known => s.known += 1,
            Status::Unknown => s.unknown += 1,
            Status::ShortLived => s.short_lived += 1,
            Status::Outside => s.outside += 1,
        }
    }
    s
}
