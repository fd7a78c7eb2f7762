"""The consent package's messages (Japanese first, then English)."""

from __future__ import annotations

from core import messages

messages.register(
    {
        "consent.nav": ("本人・同意", "People and consent"),
        "consent.todo_title": ("同意の再確認（{count}件）", "Consents to re-confirm ({count})"),
        "consent.todo_reconfirm": (
            "{threshold}歳に達したこども（現在{age}歳）の同意を再確認してください",
            "A child has reached {threshold} (now {age}): re-confirm the consent",
        ),
        # lookups
        "consent.person_not_found": ("該当する人が見つかりません。", "No such person."),
        "consent.record_not_found": ("同意記録が見つかりません。", "No such consent record."),
        "consent.notice_not_found": ("同意説明文が見つかりません。", "No such consent notice."),
        "consent.receipt_not_found": ("同意の控えが見つかりません。", "No such receipt."),
        "consent.search_needs_query": (
            "宛名番号、または氏名（かな）と生年月日の両方を入力してください。",
            "Enter an atena number, or a full name (or kana) together with the birth date.",
        ),
        "consent.person_access_denied": (
            "この方の記録（保護者・証明・同意の履歴・制限）を閲覧する権限がありません。"
            "閲覧できるのは個人情報保護担当と、担当ケースに割り当てられた支援担当者です。",
            "You may not read this person's record (guardians, proofs, consent history, "
            "restrictions): it is for privacy officers and the support workers a case of the "
            "person is assigned to.",
        ),
        # notices
        "consent.notice_immutable": (
            "同意説明文「{key}」第{version}版は既に提示されているため変更できません。新しい版を作成してください。",
            "Notice {key!r} version {version} has been shown and cannot change; "
            "make a new version.",
        ),
        "consent.notice_never_shown": (
            "同意説明文「{key}」第{version}版はまだ提示（公開）されていません。",
            "Notice {key!r} version {version} has never been shown.",
        ),
        "consent.notice_purpose_mismatch": (
            "同意説明文の利用目的と同意の利用目的が一致しません。",
            "The consent's purpose is not the notice's purpose.",
        ),
        "consent.bad_recipient": (
            "提供先「{recipient}」の形式が正しくありません（organ:番号 または body:番号）。",
            "Recipient {recipient!r} is not 'organ:<id>' or 'body:<id>'.",
        ),
        "consent.unknown_recipient": (
            "提供先「{recipient}」は登録されていません。",
            "Recipient {recipient!r} does not exist.",
        ),
        "consent.scope_not_in_notice": (
            "同意説明文にない{what}が含まれています: {detail}",
            "Not in the notice ({what}): {detail}",
        ),
        "consent.scope_missing_necessary": (
            "同意説明文で必須の{what}が含まれていません: {detail}",
            "Necessary {what} of the notice missing: {detail}",
        ),
        "consent.scope_empty": ("{what}が選ばれていません。", "No {what} chosen."),
        "consent.word_items": ("情報項目", "items"),
        "consent.word_recipients": ("提供先", "recipients"),
        # giving consent
        "consent.no_authority": (
            "同意した人（{giver}）は、住民記録上この子の{relation}として登録されていません。",
            "The register does not show the giver ({giver}) as the child's {relation}.",
        ),
        "consent.child_alone_below_guardian_age": (
            "{age}歳のこどもは本人だけでは同意できません（{limit}歳未満は法定代理人の同意が必要です）。",
            "A child of {age} cannot consent alone (below {limit} a legal representative "
            "consents).",
        ),
        "consent.child_decides": (
            "{age}歳の本人が同意します（{limit}歳以上は本人の同意を記録します）。",
            "At {age} the child consents personally (from {limit}).",
        ),
        "consent.child_view_required": (
            "{age}歳のこどもの意見（賛成・反対、または聴かなかった理由）を記録してください。",
            "Record the view of the child aged {age} (assent, objection, or why not asked).",
        ),
        "consent.relation_self_mismatch": (
            "本人による同意では、同意した人と本人が同じでなければなりません。",
            "For consent by the child, the giver must be the child.",
        ),
        "consent.not_given": (
            "この同意記録は有効な同意ではありません（状態: {state}）。",
            "This record is not a consent in force (state: {state}).",
        ),
        "consent.no_withdrawal_authority": (
            "撤回した人（{person}）には、この同意を撤回する権限が登録されていません。",
            "The register shows no authority of {person} to withdraw this consent.",
        ),
        "consent.in_the_future": (
            "同意の日時が未来になっています。", "The time of the consent is in the future."),
        "consent.view_under_age": ("意見を聴く年齢未満", "below the age of asking"),
        # the mark and restrictions
        "consent.reason_required": ("理由を入力してください。", "Give a reason."),
        "consent.mark_not_found": ("指定された記録が見つかりません。", "No such mark."),
        "consent.restriction_not_found": ("利用制限が見つかりません。", "No such restriction."),
        # exclusion reasons (why_excluded)
        "consent.excluded_restricted": (
            "この目的について利用制限があります（{source}、{since}から）。",
            "A restriction applies to this purpose ({source}, since {since}).",
        ),
        "consent.excluded_route_unsuitable": (
            "この子については同意による提供が不適当と判断されています（総括管理主体の判断）。",
            "A privacy officer has marked the consent route unsuitable for this child.",
        ),
        "consent.excluded_route_unavailable": (
            "この子については同意による取扱いができません。",
            "The consent route is not available for this child.",
        ),
        "consent.excluded_no_self_consent": (
            "項目 {item}（提供先 {recipient}）について本人の有効な同意がありません。",
            "No valid consent of the child for item {item} to {recipient}.",
        ),
        "consent.excluded_no_guardian": (
            "法定代理人（親権者・未成年後見人）が登録されていません。",
            "No legal representative (親権者 or 未成年後見人) is registered.",
        ),
        "consent.excluded_no_guardian_consent": (
            "項目 {item}（提供先 {recipient}）について法定代理人（{guardian}）の"
            "有効な同意がありません。",
            "No valid consent of the legal representative {guardian} for item {item} to "
            "{recipient}.",
        ),
        "consent.excluded_withdrawn": (
            "項目 {item}（提供先 {recipient}）についての同意は撤回されています。",
            "Consent for item {item} to {recipient} has been withdrawn.",
        ),
        "consent.excluded_expired": (
            "項目 {item}（提供先 {recipient}）についての同意は有効期限が過ぎています。",
            "Consent for item {item} to {recipient} has expired.",
        ),
        "consent.excluded_child_objected": (
            "項目 {item}（提供先 {recipient}）について、こども本人が反対しています。",
            "The child objected for item {item} to {recipient}.",
        ),
        "consent.excluded_not_in_population": (
            "この人は対象者に含まれていません。", "The person is not in the population."),
        # import
        "consent.import_unreadable": (
            "ファイルを読み込めません（{detail}）。", "The file cannot be read ({detail})."),
        "consent.import_missing_column": (
            "必須の列「{column}」がありません。", "Required column {column!r} is missing."),
        "consent.import_bad_value": (
            "{line}行目の「{column}」の値が正しくありません（{detail}）。",
            "Row {line}, field {column!r}: {detail}.",
        ),
        "consent.import_duplicate": (
            "{line}行目の宛名番号は{first}行目と重複しています。",
            "Row {line} repeats the atena number of row {first}.",
        ),
        "consent.import_unknown_guardian": (
            "{line}行目の「{column}」の宛名番号の人が、ファイルにも住民記録にもありません。",
            "Row {line}, field {column!r}: no such person in the file or the register.",
        ),
        "consent.import_my_number_column": (
            "列「{column}」は個人番号（マイナンバー）です。この台帳は個人番号を保存も照合もしません。"
            "列を削除してから取り込んでください。",
            "Column {column!r} is a 個人番号 (My Number) column. The register never stores or "
            "matches on My Number: remove the column and import again.",
        ),
        "consent.import_empty": ("取り込む行がありません。", "There are no rows to import."),
        # receipts
        "consent.receipt_title": ("同意の控え", "Consent receipt"),
        "consent.withdrawal_receipt_title": ("同意撤回の控え", "Receipt of withdrawal"),
        # labels
        "consent.relation.self": ("本人", "the child"),
        "consent.relation.parent": ("親権者", "parent (親権者)"),
        "consent.relation.minor_guardian": ("未成年後見人", "guardian (未成年後見人)"),
        "consent.source.withdrawal": ("同意の撤回", "consent withdrawn"),
        "consent.source.suspension_request": ("利用停止請求", "suspension request granted"),
        "consent.source.officer_decision": ("総括管理主体の判断", "officer's decision"),
        "consent.view.assent": ("賛成", "assent"),
        "consent.view.objection": ("反対", "objection"),
        "consent.view.not_asked": ("聴取せず", "not asked"),
        "consent.channel.online": ("オンライン", "online"),
        "consent.channel.paper": ("書面（職員入力）", "paper (entered by staff)"),
        "consent.channel.counter": ("窓口", "at the counter"),
        "consent.state.given": ("有効", "given"),
        "consent.state.refused": ("拒否", "refused"),
        "consent.state.withdrawn": ("撤回済み", "withdrawn"),
        "consent.state.expired": ("期限切れ", "expired"),
        "consent.state.requested": ("依頼中", "requested"),
    }
)
