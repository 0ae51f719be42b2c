"""The caller's page in Dutch and English. Short sentences: it is read on a phone, during an emergency call."""

from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
    "nl": {
        "title": "Beelden delen met de meldkamer",
        "intro": "De meldkamer van de politie vraagt u te laten zien wat u ziet.",
        "asks": "De meldkamer vraagt:",
        "what": "Wat u deelt",
        "what_text": "Alleen de foto's en video's die u zelf kiest. Uw locatie alleen als u dat apart toestaat. "
        "Geen naam, geen telefoonnummer, niets anders van uw telefoon.",
        "whom": "Met wie",
        "whom_text": "Met de meldkamer van de politie die uw melding behandelt.",
        "how_long": "Hoe lang",
        "how_long_text": "De beelden horen bij dit incident. Na {days} dagen verwijdert de politie ze, tenzij ze "
        "bewijs worden in een strafzaak.",
        "safety": "Deel alleen als het veilig is. Bent u in gevaar? Volg de aanwijzingen van de meldkamer.",
        "valid_until": "Deze link werkt tot {until}.",
        "give": "Ja, ik deel beelden",
        "refuse": "Nee, liever niet",
        "refused_title": "U deelt geen beelden",
        "refused_text": "De meldkamer ziet dat u nee heeft gezegd. U kunt deze pagina sluiten.",
        "changed_mind": "Bedenkt u zich? Dan kunt u alsnog delen zolang de link werkt.",
        "share_title": "Dank u",
        "share_text": "De meldkamer ziet dat u beelden wilt delen.",
        "choose": "Kies foto's of video's (van de camera of uit uw galerij)",
        "send": "Versturen",
        "location": "Mijn locatie meesturen",
        "location_note": "Uw telefoon vraagt eerst of dat mag. Zonder locatie gebruikt de meldkamer de plaats "
        "van het incident.",
        "location_on": "Uw locatie wordt meegestuurd.",
        "location_off": "Geen locatie: uw telefoon gaf die niet.",
        "sent": "Ontvangen: {n} bestand(en). De meldkamer ziet ze nu. U kunt meer sturen.",
        "files_so_far": "Tot nu toe verstuurd: {n}.",
        "limits": "Foto's tot 20 MB, video's tot 200 MB en 5 minuten; tot 10 bestanden.",
        "report_from_caller": "Beelden van een beller, op verzoek van de meldkamer: {ask}",
        "progress": "Voortgang van het versturen",
        "sending": "Bestand {n} van {total} wordt verstuurd…",
        "checking": "Alles is aangekomen. De bestanden worden gecontroleerd…",
        "failed": "Het versturen lukt nu niet. Controleer uw verbinding en druk opnieuw op Versturen: "
        "het gaat verder waar het bleef.",
        "too_many": "Dat zijn te veel bestanden: kies er minder.",
        "too_big": "Te groot om te versturen:",
        "unknown_title": "Deze link werkt niet",
        "unknown_text": "Controleer of u de hele link uit de sms heeft geopend. Werkt het niet? Zeg het de "
        "meldkamer; zij kunnen een nieuwe link sturen.",
        "revoked_title": "Deze link is ingetrokken",
        "revoked_text": "De meldkamer heeft deze link beëindigd. Er wordt niets meer verstuurd.",
        "expired_title": "Deze link is verlopen",
        "expired_text": "Links voor beelden werken maar korte tijd. Heeft de meldkamer nog beelden nodig? Dan "
        "sturen zij een nieuwe link.",
        "other_language": "English",
    },
    "en": {
        "title": "Share images with the control room",
        "intro": "The police control room asks you to show what you see.",
        "asks": "The control room asks:",
        "what": "What you share",
        "what_text": "Only the photos and videos you choose. Your location only if you allow that separately. "
        "No name, no phone number, nothing else from your phone.",
        "whom": "With whom",
        "whom_text": "With the police control room that handles your call.",
        "how_long": "How long",
        "how_long_text": "The images belong to this incident. The police delete them after {days} days, unless they "
        "become evidence in a criminal case.",
        "safety": "Only share when it is safe. Are you in danger? Follow the control room's instructions.",
        "valid_until": "This link works until {until}.",
        "give": "Yes, I will share images",
        "refuse": "No, I'd rather not",
        "refused_title": "You share no images",
        "refused_text": "The control room sees that you said no. You can close this page.",
        "changed_mind": "Changed your mind? You can still share while the link works.",
        "share_title": "Thank you",
        "share_text": "The control room sees that you want to share images.",
        "choose": "Choose photos or videos (from the camera or your gallery)",
        "send": "Send",
        "location": "Send my location",
        "location_note": "Your phone asks first whether that is allowed. Without a location the control room uses "
        "the incident's place.",
        "location_on": "Your location will be sent.",
        "location_off": "No location: your phone did not give it.",
        "sent": "Received: {n} file(s). The control room sees them now. You can send more.",
        "files_so_far": "Sent so far: {n}.",
        "limits": "Photos up to 20 MB, videos up to 200 MB and 5 minutes; up to 10 files.",
        "report_from_caller": "Images from a caller, asked for by the control room: {ask}",
        "progress": "Sending progress",
        "sending": "Sending file {n} of {total}…",
        "checking": "Everything arrived. The files are being checked…",
        "failed": "Sending does not work right now. Check your connection and press Send again: it goes on where "
        "it stopped.",
        "too_many": "Those are too many files: choose fewer.",
        "too_big": "Too large to send:",
        "unknown_title": "This link does not work",
        "unknown_text": "Check that you opened the whole link from the text message. Still not working? Tell "
        "the control room; they can send a new link.",
        "revoked_title": "This link was ended",
        "revoked_text": "The control room ended this link. Nothing more will be sent.",
        "expired_title": "This link has expired",
        "expired_text": "Links for images work only a short time. If the control room still needs images, they "
        "will send a new link.",
        "other_language": "Nederlands",
    },
}
