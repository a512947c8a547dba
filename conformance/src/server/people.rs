//! Feature level 2, §26 profiles and search.

use confab_sdk::v1::{self, server_frame::Body};

use super::{
    Case, Ctx,
    calls::{self, brief, get_profile, profile, set_profile},
    conn::by_id,
    events::plausible_time,
    show::show_reply,
};
use crate::{outcome::CaseResult, wire::Wires};

const PROFILES: &str = "Profiles and search";

pub fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "profile/get-and-set",
            PROFILES,
            "Profiles are read by name and changed field by field; every User then carries the display name",
            &["PROFILE-1", "PROFILE-2", "PROFILE-3"],
            Wires::All,
            get_and_set,
        ),
        Case::new(
            "profile/refused",
            PROFILES,
            "Empty, oversized and control-character profiles are INVALID_ARGUMENT; unknown users USER_NOT_FOUND",
            &["PROFILE-1", "PROFILE-2", "ERR-3"],
            Wires::All,
            refused,
        ),
        Case::new(
            "profile/guests",
            PROFILES,
            "A guest has a profile, may set a status text, and nothing else of it",
            &["PROFILE-1", "PROFILE-2", "AUTH-14"],
            Wires::All,
            guests,
        ),
        Case::new(
            "profile/search",
            PROFILES,
            "SearchUsers lists registered users by name prefix, case-insensitively, in name order, within the limit",
            &["PROFILE-4"],
            Wires::All,
            search,
        ),
    ]
}

fn search_users(prefix: &str, limit: u32) -> v1::client_frame::Command {
    v1::client_frame::Command::SearchUsers(v1::SearchUsers { prefix: prefix.into(), limit })
}

async fn get_and_set(cx: Ctx) -> CaseResult {
    let (mut ada, ada_user) = cx.user("ada").await?;
    let (mut bob, bob_user) = cx.user("bob").await?;
    let seen = profile(&mut ada, get_profile(&bob_user.name.to_uppercase())).await?;
    cx.check(
        "PROFILE-1",
        seen.user.as_ref().is_some_and(|u| u.user_id == bob_user.id && u.name == bob_user.name)
            && plausible_time(seen.created_at_ms)
            && !seen.share_receipts
            && seen.display_name.is_empty(),
        format!("GetProfile by name, any case: bob, created now, no display name, share_receipts only in one's own; got {seen:?}"),
    );
    let own = profile(&mut bob, get_profile(&bob_user.name)).await?;
    cx.check(
        "PROFILE-1",
        own.share_receipts,
        format!("one's own profile shows share_receipts (true by default): {own:?}"),
    );

    let set = v1::SetProfile {
        display_name: Some("Ada Lovelace ✨".into()),
        status_text: Some("counting 🔢".into()),
        ..Default::default()
    };
    let changed = profile(&mut ada, set_profile(set)).await?;
    cx.check(
        "PROFILE-2",
        changed.display_name == "Ada Lovelace ✨" && changed.status_text == "counting 🔢",
        format!("SetProfile answers the new profile: {changed:?}"),
    );
    let seen = profile(&mut bob, get_profile(&ada_user.name)).await?;
    cx.check(
        "PROFILE-2",
        seen.display_name == "Ada Lovelace ✨"
            && seen.status_text == "counting 🔢"
            && seen.user.as_ref().is_some_and(|u| u.display_name == "Ada Lovelace ✨"),
        format!("others read the new profile: {seen:?}"),
    );
    let partial =
        profile(&mut ada, set_profile(v1::SetProfile { status_text: Some(String::new()), ..Default::default() }))
            .await?;
    cx.check(
        "PROFILE-2",
        partial.display_name == "Ada Lovelace ✨" && partial.status_text.is_empty(),
        format!("only the fields present change (status cleared, display name kept): {partial:?}"),
    );

    let room = cx.new_room(&mut ada, v1::RoomKind::Public).await?;
    bob.join(by_id(room.room_id)).await?;
    let result = ada.send_message(room.room_id, "styled", "pr-1").await?;
    let event = calls::event_at(&mut bob, room.room_id, result.seq).await?;
    let sender = event.and_then(|e| e.sender);
    cx.check(
        "PROFILE-3",
        sender.as_ref().is_some_and(|u| u.display_name == "Ada Lovelace ✨"),
        format!("an event's sender carries the display name: {sender:?}"),
    );
    let members = bob.list_members(by_id(room.room_id)).await?;
    let listed = members.iter().find_map(|m| m.user.as_ref().filter(|u| u.user_id == ada_user.id));
    cx.check(
        "PROFILE-3",
        listed.is_some_and(|u| u.display_name == "Ada Lovelace ✨"),
        format!("ListMembers carries the display name: {listed:?}"),
    );
    let removed =
        profile(&mut ada, set_profile(v1::SetProfile { display_name: Some(String::new()), ..Default::default() }))
            .await?;
    cx.check("PROFILE-2", removed.display_name.is_empty(), format!("\"\" removes the display name: {removed:?}"));
    Ok(())
}

async fn refused(cx: Ctx) -> CaseResult {
    let (mut ada, ada_user) = cx.user("ada").await?;
    let reply = ada.request(get_profile(&cx.name("nobody"))).await?;
    cx.check_refused("PROFILE-1", "GetProfile of an unknown name", &reply, v1::ErrorCode::UserNotFound);
    let bad: [(&str, v1::SetProfile); 5] = [
        ("no field", v1::SetProfile::default()),
        ("a display name of 65 bytes", v1::SetProfile { display_name: Some("x".repeat(65)), ..Default::default() }),
        (
            "a display name with a control character",
            v1::SetProfile { display_name: Some("Ada\u{7}".into()), ..Default::default() },
        ),
        ("a display name with a newline", v1::SetProfile { display_name: Some("Ada\nL".into()), ..Default::default() }),
        ("a status text of 141 bytes", v1::SetProfile { status_text: Some("y".repeat(141)), ..Default::default() }),
    ];
    for (what, set) in bad {
        let reply = ada.request(set_profile(set)).await?;
        cx.check_refused("PROFILE-2", what, &reply, v1::ErrorCode::InvalidArgument);
    }
    let fits = ada
        .request(set_profile(v1::SetProfile {
            display_name: Some("é".repeat(32)),
            status_text: Some("z".repeat(140)),
            ..Default::default()
        }))
        .await?;
    cx.check(
        "PROFILE-2",
        matches!(&fits, Ok(Body::Profile(p)) if p.display_name == "é".repeat(32)),
        format!("a 64-byte display name and a 140-byte status text fit: {}", brief(&fits)),
    );
    let seen = profile(&mut ada, get_profile(&ada_user.name)).await?;
    cx.check(
        "ERR-3",
        seen.display_name == "é".repeat(32),
        format!("the refused changes left the profile alone: {:?}", seen.display_name),
    );
    Ok(())
}

async fn guests(cx: Ctx) -> CaseResult {
    let (mut ada, _) = cx.user("ada").await?;
    let mut guest = cx.open("guest").await?;
    let guest_name = cx.name("guest");
    let auth = guest.guest(&guest_name).await?;
    let guest_id = auth.user.as_ref().map_or(0, |u| u.user_id);
    let seen = ada.request(get_profile(&guest_name)).await?;
    cx.check(
        "PROFILE-1",
        matches!(&seen, Ok(Body::Profile(p)) if p.user.as_ref().is_some_and(|u| u.user_id == guest_id && u.guest)),
        format!("a connected guest has a profile: {}", show_reply(&seen)),
    );
    let reply = guest
        .request(set_profile(v1::SetProfile { status_text: Some("just looking 👀".into()), ..Default::default() }))
        .await?;
    cx.check(
        "PROFILE-2",
        matches!(&reply, Ok(Body::Profile(p)) if p.status_text == "just looking 👀"),
        format!("a guest may set a status text: {}", brief(&reply)),
    );
    for (what, set) in [
        ("a display name", v1::SetProfile { display_name: Some("Zoe".into()), ..Default::default() }),
        ("receipt sharing", v1::SetProfile { share_receipts: Some(false), ..Default::default() }),
    ] {
        let reply = guest.request(set_profile(set)).await?;
        cx.check_refused("AUTH-14", format!("a guest setting {what}"), &reply, v1::ErrorCode::Forbidden);
    }
    Ok(())
}

async fn search(cx: Ctx) -> CaseResult {
    // One fresh name as the prefix of three users and a guest: other runs of
    // this case (on other wires, at once) use other prefixes.
    let prefix = format!("{}x", cx.name("srch"));
    let mut names = Vec::new();
    let mut conns = Vec::new();
    for suffix in ["c", "a", "b"] {
        let mut conn = cx.open("srch").await?;
        let name = format!("{prefix}{suffix}");
        conn.register(&name, super::ctx::PASSWORD).await?;
        names.push(name);
        conns.push(conn);
    }
    let mut guest = cx.open("guest").await?;
    guest.guest(&format!("{prefix}g")).await?;
    let mut sorted = names.clone();
    sorted.sort();
    let searcher = &mut conns[0];
    let reply = searcher.request(search_users(&prefix.to_uppercase(), 0)).await?;
    let found: Vec<String> = match &reply {
        Ok(Body::Profiles(list)) => {
            list.profiles.iter().filter_map(|p| p.user.as_ref().map(|u| u.name.clone())).collect()
        }
        _ => Vec::new(),
    };
    cx.check(
        "PROFILE-4",
        found == sorted,
        format!(
            "prefix {:?} (upper case) finds the three registered users in name order, not the guest: expected {sorted:?}, got {}",
            prefix.to_uppercase(),
            show_reply(&reply)
        ),
    );
    let reply = searcher.request(search_users(&prefix, 2)).await?;
    let found: Vec<String> = match &reply {
        Ok(Body::Profiles(list)) => {
            list.profiles.iter().filter_map(|p| p.user.as_ref().map(|u| u.name.clone())).collect()
        }
        _ => Vec::new(),
    };
    cx.check("PROFILE-4", found == sorted[..2], format!("limit 2 gives the first two: {found:?}"));
    for (what, prefix, limit) in [
        ("an empty prefix", String::new(), 0),
        ("a 33-character prefix", "a".repeat(33), 0),
        ("limit 51", prefix.clone(), 51),
    ] {
        let reply = searcher.request(search_users(&prefix, limit)).await?;
        cx.check_refused("PROFILE-4", what, &reply, v1::ErrorCode::InvalidArgument);
    }
    Ok(())
}
