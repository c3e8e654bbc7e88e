"""Each alert rule on pairs (and runs) of stored assessment documents."""

from __future__ import annotations

from mecsa.monitor.alert import Alert, AlertKind, Severity
from mecsa.monitor.rules import RuleSettings, evaluate
from tests.unit.monitor import documents as docs
from tests.unit.monitor.documents import ADDRESS, HOST, NEW_KEY, OLD_KEY


def _keys(alerts: list[Alert]) -> set[str]:
    return {a.key for a in alerts}


def _one(alerts: list[Alert], key: str) -> Alert:
    [found] = [a for a in alerts if a.key == key]
    return found


def test_a_healthy_domain_with_no_history_raises_nothing() -> None:
    assert evaluate(docs.top(), []) == []


def test_the_same_healthy_assessment_twice_raises_nothing() -> None:
    assert evaluate(docs.top(), [docs.top()]) == []


def test_a_new_key_with_no_matching_tlsa_is_the_dane_break_with_the_exact_record_to_publish() -> None:
    before, after = docs.top(), docs.with_new_key(docs.top())
    alerts = evaluate(after, [before])
    assert _keys(alerts) == {
        "level_dropped confidentiality",
        "protocol_regressed dane",
        f"finding dane.no_match {HOST} {ADDRESS}",
        f"dane_key_changed {HOST} {ADDRESS}",
    }
    broke = _one(alerts, f"dane_key_changed {HOST} {ADDRESS}")
    assert (broke.kind, broke.severity) == (AlertKind.CONDITION, Severity.CRITICAL)
    assert broke.evidence[:2] == (f"key before: {OLD_KEY}", f"key now: {NEW_KEY}")
    assert broke.fixes[0].snippets == (
        (f"DNS zone of {HOST}", f"_25._tcp.{HOST}. 3600 IN TLSA 3 1 1 {NEW_KEY}"),
    )
    assert "tlsa-next" in broke.fixes[1].snippets[0][1]  # then pre-publish the next key
    level = _one(alerts, "level_dropped confidentiality")
    assert (level.kind, level.evidence) == (AlertKind.EVENT, ("confidentiality: 10 -> 7",))


def test_the_key_change_is_still_seen_on_the_next_pass_against_the_key_dane_last_matched() -> None:
    broken = docs.with_new_key(docs.top())
    # newest first: the pass before was already broken; the last match is one further back
    alerts = evaluate(broken, [broken, docs.top()])
    assert f"dane_key_changed {HOST} {ADDRESS}" in _keys(alerts)
    assert "level_dropped confidentiality" not in _keys(alerts)  # the drop was told on the pass it happened


def test_a_dane_mismatch_without_a_key_change_is_no_key_change_alert() -> None:
    # the TLSA was edited (the key is the same as when DANE last matched): the finding tells it
    mismatched = docs.with_new_key(docs.top(), key=OLD_KEY)
    alerts = evaluate(mismatched, [docs.top()])
    assert f"dane_key_changed {HOST} {ADDRESS}" not in _keys(alerts)
    assert f"finding dane.no_match {HOST} {ADDRESS}" in _keys(alerts)


def test_dmarc_edited_to_p_none_raises_its_finding_with_the_catalogue_fix_and_the_level_drops() -> None:
    alerts = evaluate(docs.with_dmarc_none(docs.top()), [docs.top()])
    assert _keys(alerts) == {
        "level_dropped phishing",
        "level_dropped integrity",
        "protocol_regressed dmarc_policy",
        "finding dmarc_policy.none",
    }
    finding = _one(alerts, "finding dmarc_policy.none")
    [fix] = finding.fixes
    assert "p=reject" in fix.snippets[0][1] and "_dmarc.top.test." in fix.snippets[0][1]
    assert _one(alerts, "level_dropped phishing").fixes == (fix,)


def test_a_certificate_within_the_expiry_window_alerts_on_that_address_and_not_before() -> None:
    assert evaluate(docs.with_days_left(docs.top(), 22), []) == []
    soon = evaluate(docs.with_days_left(docs.top(), 21), [])
    expiry = _one(soon, f"certificate_expiring {HOST} {ADDRESS}")
    assert expiry.severity is Severity.WARNING and "21 day(s)" in expiry.message
    assert expiry.fixes[0].snippets[0][1] == f"certbot certonly --standalone -d {HOST}"
    critical = _one(
        evaluate(docs.with_days_left(docs.top(), 3), []), f"certificate_expiring {HOST} {ADDRESS}"
    )
    assert critical.severity is Severity.CRITICAL


def test_the_expiry_window_comes_from_the_settings() -> None:
    doc = docs.with_days_left(docs.top(), 25)
    assert f"certificate_expiring {HOST} {ADDRESS}" in _keys(evaluate(doc, [], RuleSettings(expiry_days=30)))


def test_the_expiry_alert_keeps_its_fingerprint_as_the_days_go_by() -> None:
    day1 = _one(evaluate(docs.with_days_left(docs.top(), 20), []), f"certificate_expiring {HOST} {ADDRESS}")
    day2 = _one(evaluate(docs.with_days_left(docs.top(), 19), []), f"certificate_expiring {HOST} {ADDRESS}")
    assert day1.message != day2.message and day1.fingerprint == day2.fingerprint


def test_renewal_near_with_only_the_current_keys_tlsa_predicts_the_dane_break() -> None:
    alerts = evaluate(docs.with_days_left(docs.top(), 10), [])
    predicted = _one(alerts, f"dane_no_next_key {HOST} {ADDRESS}")
    assert "tlsa-next" in predicted.fixes[0].snippets[0][1]


def test_a_pre_published_next_key_or_a_matching_dane_ta_record_means_no_prediction() -> None:
    soon = docs.with_days_left(docs.top(), 10)
    next_key = docs.with_tlsa(soon, [(f"3 1 1 {OLD_KEY}", True), (f"3 1 1 {NEW_KEY}", False)])
    assert f"dane_no_next_key {HOST} {ADDRESS}" not in _keys(evaluate(next_key, []))
    ta = docs.with_tlsa(soon, [(f"3 1 1 {OLD_KEY}", True), ("2 1 1 " + "cd" * 32, True)])
    assert f"dane_no_next_key {HOST} {ADDRESS}" not in _keys(evaluate(ta, []))


def test_mta_sts_text_changed_without_its_id_holds_until_the_id_changes() -> None:
    old = docs.with_mta_sts(docs.top(), "id1", "a" * 64)
    changed = docs.with_mta_sts(docs.top(), "id1", "b" * 64)
    alerts = evaluate(changed, [old])
    stale = _one(alerts, "mta_sts_id text_changed")
    assert stale.kind is AlertKind.CONDITION
    assert (
        stale.fixes[0].snippets[0][1] == '_mta-sts.top.test. 3600 IN TXT "v=STSv1; id=bbbbbbbbbbbbbbbbbbbb"'
    )
    assert "mta_sts_id text_changed" in _keys(evaluate(changed, [changed, old]))  # still wrong next pass
    fixed = docs.with_mta_sts(docs.top(), "id2", "b" * 64)
    assert not any(
        a.rule == "mta_sts_id" and a.kind is AlertKind.CONDITION for a in evaluate(fixed, [changed, old])
    )


def test_mta_sts_id_changed_without_the_text_is_a_change_told_once() -> None:
    old = docs.with_mta_sts(docs.top(), "id1", "a" * 64)
    new = docs.with_mta_sts(docs.top(), "id2", "a" * 64)
    assert _one(evaluate(new, [old]), "mta_sts_id id_changed").kind is AlertKind.EVENT
    assert evaluate(new, [new, old]) == []


def test_an_mx_set_or_address_change_is_an_event_with_the_difference() -> None:
    moved = docs.with_mx(docs.top(), {HOST: ["10.53.0.11"]})
    change = _one(evaluate(moved, [docs.top()]), "mx_changed")
    assert change.evidence == (f"- {HOST} 10.53.0.10", f"+ {HOST} 10.53.0.11")
    assert "MX addresses" in change.message
    added = docs.with_mx(docs.top(), {HOST: ["10.53.0.10"], "mx2.top.test": ["10.53.0.12"]})
    assert "MX set" in _one(evaluate(added, [docs.top()]), "mx_changed").message


def test_port_25_silent_once_is_not_an_alert_twice_in_a_row_is() -> None:
    silent = docs.with_port25_silent(docs.top())
    assert evaluate(silent, [docs.top()]) == []  # one miss: no flapping
    twice = evaluate(silent, [silent, docs.top()])
    assert _keys(twice) == {f"smtp_unreachable {HOST} {ADDRESS}"}
    assert evaluate(docs.top(), [silent, silent]) == []  # answering again: the condition clears


def test_an_error_finding_needs_two_passes_in_a_row() -> None:
    once = docs.with_error_finding(docs.top())
    assert evaluate(once, [docs.top()]) == []
    assert _keys(evaluate(once, [once])) == {"finding dkim.lookup_error"}


def test_a_protocol_going_from_pass_to_error_is_told() -> None:
    doc = docs.top()
    doc["protocols"]["dkim"] = {"status": "error", "reason": "SERVFAIL"}
    alert = _one(evaluate(doc, [docs.top()]), "protocol_regressed dkim")
    assert alert.severity is Severity.WARNING and alert.evidence[1] == "now: error (SERVFAIL)"


def test_warnings_are_alerts_only_when_asked_for() -> None:
    assert evaluate(docs.top(), []) == []
    warned = evaluate(docs.top(), [], RuleSettings(alert_on_warnings=True))
    assert _keys(warned) == {"finding dane.single_record mx1.top.test"}


def test_alert_json_round_trips() -> None:
    for alert in evaluate(docs.with_new_key(docs.top()), [docs.top()]):
        assert Alert.from_json(alert.to_json()) == alert
