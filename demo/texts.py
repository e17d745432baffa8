"""Text templates for the simulated demo source.

The demo world decides each mention's tone (positive, neutral or negative) from a known
mood model; this module turns that tone into a believable post. The campaign report
estimates the mood from VADER labels, so a text that VADER reads against its intended
tone biases the recovered campaign lift. The pools are therefore written against the
VADER lexicon on purpose:

* positive and negative texts use one polarity only and no negation near a sentiment
  word ("not bad" reads positive to a human and negative-ish to VADER);
* neutral texts contain no word of the VADER lexicon at all ("please", "like", "free",
  "loyalty", "ok" are all scored!), and only emoji whose VADER descriptions carry no
  score (VADER reads "🔥" as "fire", negative, so it appears nowhere);
* slot fillers (drinks, stores, times) are lexicon-free, so any filler fits any template.

``tests/demo/test_world.py`` measures the agreement over thousands of samples.
Brand names are inserted verbatim: a configured brand whose name holds a sentiment word
("Happy Beans") shifts VADER scores, which is a property of that name, not of the pools.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from functools import lru_cache
from string import Formatter

TONES = ("positive", "neutral", "negative")

# Slot fillers. Every word here is outside the VADER lexicon.
SLOTS: dict[str, tuple[str, ...]] = {
    "drink": (
        "oat latte", "cold brew", "flat white", "iced mocha", "cortado", "chai latte",
        "drip coffee", "americano", "matcha latte", "caramel macchiato", "pumpkin spice latte",
        "hazelnut cold brew", "double espresso", "cappuccino", "vanilla latte", "iced americano",
        "maple oat espresso", "nitro cold brew", "honey almond latte", "mocha", "london fog",
        "iced chai", "brown sugar latte", "decaf americano", "peppermint mocha", "oat cappuccino",
    ),
    "food": (
        "croissant", "banana bread", "breakfast sandwich", "blueberry muffin", "everything bagel",
        "egg bites", "cinnamon roll", "almond croissant", "turkey panini", "oat cookie",
        "spinach wrap", "lemon loaf", "bacon roll", "granola cup",
    ),
    "place": (
        "the Main St store", "the downtown location", "the airport store", "the one by my office",
        "the Elm Ave location", "the drive-thru on 5th", "the store near campus",
        "the station kiosk", "the mall location", "the one on Broadway", "the Oak Park store",
        "the one by the gym", "the Union Sq store", "the hospital kiosk",
    ),
    "when": (
        "this morning", "today", "on my lunch break", "before work", "last night",
        "on the way to class", "at 7am", "after the gym", "on Saturday", "yesterday",
        "at 6:45am", "before my shift", "on the school run", "after my meeting", "on Sunday",
    ),
    "minutes": ("15", "20", "25", "30", "35", "40", "45", "50", "12", "18"),
    "feature": (
        "the app", "mobile order", "the order-ahead button", "the new app update",
        "curbside pickup", "the delivery tracker", "the points page", "the app checkout",
    ),
    "promo": (
        "the fall menu", "the winter cups", "the two-for-one Tuesday deal",
        "the new seasonal menu", "the student discount", "the weekend bundle",
        "the morning combo", "the refill offer",
    ),
    "who": (
        "my coworker", "my sister", "my roommate", "my dad", "my whole team", "my partner",
        "my neighbor", "my mom", "my study group", "the new guy at work",
    ),
}

POSITIVE_ROOTS: tuple[str, ...] = (
    "{brand}'s {drink} is honestly the best part of my morning",
    "the {drink} at {place} {when} was perfect",
    "shoutout to the staff at {place}, always so friendly and kind",
    "{brand} {feature} had my {drink} ready in two minutes, love it",
    "{brand} delivery showed up fast {when} and the {drink} was still perfect. great service",
    "the new {drink} from {brand} is amazing",
    "{brand}'s {food} is so good, I get one with my {drink} every time",
    "the barista at {place} remembered my name {when}, so sweet",
    "{promo} at {brand} is a great deal, got a {drink} and a {food}",
    "{brand} has the best {drink} in town and I will fight about it",
    "love how cozy {place} is, perfect spot to work {when}",
    "grabbed a {drink} from {brand} {when}, excellent as always",
    "the {brand} {food} + {drink} combo is a winner",
    "{brand} fixed my {drink} order in seconds at {place}, super helpful team",
    "{feature} from {brand} works great now, nice job",
    "really happy with {promo} from {brand}, {who} loves it too",
    "{brand} staff at {place} are wonderful people",
    "my {drink} from {brand} {when} was delicious",
    "{brand}'s new ad made me smile, and the {drink} is excellent too",
    "{brand} prices are fair for this quality, a {drink} and {food} for under ten bucks. happy customer",
    "{place} is always clean and calm, love this {brand}",
    "best {food} I've had in ages, thank you {brand}",
    "{brand} rewards just gave me a free {drink}, awesome",
    "the {drink} at {brand} is pure joy in a cup",
    "{brand} delivery was quick {when} and the driver was lovely",
    "genuinely impressed by the {drink} at {place}",
    "{brand} baristas are so talented, beautiful latte art {when}",
    "{who} got me a {drink} from {brand} {when} and it made my day better",
    "finally tried {promo} at {brand}. fantastic",
    "{brand} {feature} is smooth and easy, great work",
    "introduced {who} to the {drink} at {brand}, instant fan",
    "{minutes} seconds from order to {drink} at {place}. impressive",
    "the {food} at {place} is fresh and warm every single time",
    "{brand} is my happy place, {drink} in hand {when}",
)

NEGATIVE_ROOTS: tuple[str, ...] = (
    "waited {minutes} minutes for a {drink} at {place}, ridiculous",
    "{brand} {feature} crashed again when I tried to order a {drink}, so annoying",
    "my {brand} delivery showed up cold and late {when}. terrible",
    "the {drink} at {brand} tasted burnt {when}, really disappointed",
    "{brand} raised prices again, a {drink} is way too expensive now. ridiculous",
    "rude staff at {place} {when}, awful experience",
    "{brand} got my {drink} wrong for the third time this week, frustrating",
    "the {food} from {place} was stale and sad",
    "{brand} charged me twice for one {drink} {when}. unacceptable",
    "{place} is always dirty lately, gross",
    "{promo} at {brand} is a scam, the deal never works",
    "{brand} delivery lost my {food} and support was useless",
    "worst {drink} I've had in months, {brand} what happened",
    "{brand} {feature} is broken again, terrible update",
    "so tired of the chaos at {place}, {brand} needs more staff",
    "my {drink} from {brand} was watery and bitter {when}. awful",
    "{brand} cancelled my order after {minutes} minutes, horrible",
    "the line at {place} is a disaster every single morning",
    "{brand} customer service is useless, still waiting on a refund for a {drink}",
    "paid extra for oat milk in my {drink} and {brand} forgot it. annoyed",
    "{brand} ads are everywhere and the {drink} got worse, sad",
    "{brand}'s {food} gave me a stomach ache {when}, disgusting",
    "{brand} prices are insane, a {drink} costs more than lunch. ugh",
    "barista at {place} was so rude {when}, never going back",
    "hate that {brand} {feature} logs me out every time",
    "the {drink} at {brand} is bland and overpriced, so disappointing",
    "{brand} spilled my {drink} all over the bag, ruined my morning",
    "{brand} messed up {promo}, a total failure",
    "horrible wait at {place} {when}, {brand} is a mess",
    "{brand} delivery driver was hostile and the {food} was crushed",
    "{who} got sick after the {food} from {brand}, awful",
    "{minutes} minutes in the drive-thru at {place} for a cold {drink}. pathetic",
    "{brand} {feature} ate my points again, so frustrating",
    "the {drink} at {place} tasted like dish water {when}, gross",
)

NEUTRAL_ROOTS: tuple[str, ...] = (
    "is {place} open on Sundays?",
    "picked up a {drink} from {brand} {when}",
    "anyone know if {place} has outlets for laptops",
    "{brand} is switching to a new cup design next month",
    "the {brand} app now shows calories for the {drink}",
    "ordering a {drink} from {brand}, meeting {who} at {place} in {minutes}",
    "{brand} opens a new store on Elm Ave next week",
    "what time does {place} close tonight",
    "trying the {drink} at {brand} for the first time {when}",
    "{brand} or the place across the street for a {drink}?",
    "does {feature} at {brand} take prepaid cards",
    "at {place} {when} with a {drink} and a {food}",
    "{promo} at {brand} starts on Monday",
    "how much is a {drink} at {brand} these days",
    "{brand} vs the other chains, which one has oat milk in the {drink} by default",
    "{brand} is hiring baristas at {place}",
    "just saw a {brand} truck on the highway {when}",
    "does {place} do a {food} after 2pm?",
    "{brand} moved the pickup counter to the back at {place}",
    "my usual at {brand}: {drink} and a {food}",
    "{brand} posted the menu for {promo}",
    "is {brand} {feature} down for anyone else or just me",
    "which {brand} {drink} has the most caffeine",
    "{brand} cups are now paper instead of plastic",
    "{brand} at {place} has a drive-thru now",
    "writing this from {place}, {drink} on the table",
    "does {brand} deliver to the north side",
    "{brand} changed the app icon {when}",
    "{minutes} {drink}s from {brand} for the team meeting",
    "on the bus to {place} for a {drink}",
    "{who} always orders the {drink} at {brand}, trying it {when}",
    "{brand} {food} or {brand} {drink}, choices",
    "meeting {who} at {place} {when}",
)

POSITIVE_REPLIES: tuple[str, ...] = (
    "same, their {drink} is so good",
    "agreed, love {place}",
    "yes! best {food} in town",
    "this made me smile",
    "totally, the staff at {place} are great",
    "glad you had a good one",
    "100% agree, {brand} is the best",
    "the {drink} there is amazing, enjoy",
    "nice! I love {place} too",
    "so true, great {drink} every time",
    "awesome, thanks for the tip",
    "{place} is my favorite too",
    "haha same, happy {drink} day",
    "good call, the {food} is perfect with it",
    "love this",
    "{who} loves that {drink} too",
    "great pick, try it with the {food} next time",
    "yes, {place} never misses",
    "that {drink} is the best thing on the menu",
)

NEGATIVE_REPLIES: tuple[str, ...] = (
    "same thing happened to me {when}, so frustrating",
    "ugh yes, {feature} is awful lately",
    "mine was wrong too, really disappointing",
    "{place} is the worst for this",
    "terrible, they did the same to me {when}",
    "sorry but {brand} has gotten so bad",
    "ridiculous, I waited {minutes} minutes too",
    "the {drink} was bitter for me too, gross",
    "yep, awful service at {place} lately",
    "this is why I stopped going, horrible",
    "same, {brand} support ignored me too. annoying",
    "ugh, that sucks",
    "their prices are terrible now",
    "broken again? unbelievable",
    "sad, {place} used to be decent",
    "{who} had the same problem {when}, awful",
    "the {food} was stale for me too, disgusting",
    "same at {place}, a total mess",
)

NEUTRAL_REPLIES: tuple[str, ...] = (
    "which location?",
    "is that {place}?",
    "what did you order",
    "did you use {feature} or walk in",
    "how long did it take",
    "what time was this",
    "is {promo} still on?",
    "they have a {food} there too",
    "I think {place} closes at 9",
    "was this {when}?",
    "do they have oat milk at {place}",
    "which app version are you on",
    "the {drink} is {minutes} cents more at the airport",
    "my {brand} is {place}",
    "I usually go to {place}",
    "{who} goes there {when}",
    "is the {drink} the one with the foam?",
    "did they have the {food} today",
)

ROOTS = {"positive": POSITIVE_ROOTS, "neutral": NEUTRAL_ROOTS, "negative": NEGATIVE_ROOTS}
REPLIES = {"positive": POSITIVE_REPLIES, "neutral": NEUTRAL_REPLIES, "negative": NEGATIVE_REPLIES}

# Tone-matched decorations; VADER maps emoji to their names, so each was checked.
EMOJI = {
    "positive": ("😍", "❤️", "🥰", "😊", "✨", "☕", "🙌", "💯"),
    "neutral": ("☕", "📍", "🤔", "👀", "📱", "🥐"),
    "negative": ("😡", "😤", "🙄", "😒", "👎", "😠", "😩"),
}
HASHTAGS = {
    "positive": ("#coffeelove", "#happy", "#goodvibes", "#treatyourself", "#coffee"),
    "neutral": ("#coffee", "#morning", "#latte", "#commute", "#mondays", "#coffeebreak"),
    "negative": ("#fail", "#disappointed", "#coffee", "#mondays", "#badservice"),
}

# Openers fit any tone, so they carry no sentiment and no negation ("not gonna lie,
# love it" reads negated to VADER). Closers match their tone.
OPENERS = ("so ", "ngl ", "update: ", "psa: ", "quick one: ", "random thought: ", "tbh ",
           "lowkey ", "btw ", "real talk: ", "story time: ", "anyway ")
CLOSERS = {
    "positive": (" 10/10", " highly recommend", " go try it", " thanks team", " wow",
                 " cheers", " kudos to the team", " yep, going back tomorrow"),
    "neutral": (" anyone?", " just wondering", " for reference", " (asking for a coworker)",
                " if that matters", " btw"),
    "negative": (" smh", " ugh", " fix this", " wtf", " last time I go there", " seriously",
                 " so over it", " sigh, again"),
}

_FORMATTER = Formatter()


def _compile(pool: tuple[str, ...]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Pair each template with the slot names it uses, so compose draws only those."""
    return tuple(
        (template, tuple(name for _, name, _, _ in _FORMATTER.parse(template) if name))
        for template in pool
    )


# A root stands for a search hit, so it must name the brand (the pipeline's local
# re-check drops it otherwise); replies are thread context and need not.
_ROOTS = {tone: _compile([t for t in pool if "{brand}" in t]) for tone, pool in ROOTS.items()}
_REPLIES = {tone: _compile(pool) for tone, pool in REPLIES.items()}


def brand_hashtag(brand: str) -> str:
    """'Kettle & Co' -> '#KettleCo': how people tag a brand."""
    return "#" + "".join(ch for ch in brand if ch.isalnum())


def compose_body(tone: str, brand: str, rng: random.Random, reply: bool) -> str:
    """One undecorated post or reply about ``brand`` in ``tone``: a template with its
    slots filled. ``rng.random()`` is used directly: ``rng.choice`` is several times slower."""
    table = _REPLIES[tone] if reply else _ROOTS[tone]
    rand = rng.random
    template, names = table[int(rand() * len(table))]
    if not names:
        return template
    values = {}
    for name in names:
        if name == "brand":
            values[name] = brand
        else:
            pool = SLOTS[name]
            values[name] = pool[int(rand() * len(pool))]
    return template.format_map(values)


# Neutral personal details (no VADER lexicon words), so that two people's posts from the
# same template differ as real posts do: 24 x 60 x 4 combinations.
_DETAIL_WHEN = (
    "before the {t} meeting", "on the {t} train", "while waiting for the {t} bus", "after the {t} class",
    "on my {t} break", "before my {t} shift", "on the way to the {t} appointment", "after the {t} call",
    "before the {t} flight", "at the {t} pickup", "during the {t} rush", "before the {t} lecture",
    "after the {t} standup", "on the {t} ferry", "before the {t} kickoff", "after the {t} practice",
    "before the {t} tram", "ahead of the {t} interview", "after the {t} school run", "on the {t} commute",
    "after my {t} run", "before the {t} show", "between the {t} calls", "on the {t} detour",
)
_DETAIL_TIMES = tuple(f"{h}:{m:02d}" for h in (6, 7, 8, 9, 11, 12, 13, 15, 16, 17, 18, 19) for m in (5, 10, 20, 35, 40))
_DETAIL_FORMS = ("({d})", "- {d}", "| {d}", "// {d}")


def personal_detail(rand: Callable[[], float]) -> str:
    when = _DETAIL_WHEN[int(rand() * len(_DETAIL_WHEN))].format(t=_DETAIL_TIMES[int(rand() * len(_DETAIL_TIMES))])
    return _DETAIL_FORMS[int(rand() * len(_DETAIL_FORMS))].format(d=when)


def decorate(text: str, tone: str, brand: str, rand: Callable[[], float], reply: bool) -> str:
    """Vary a body the way people do: an opener, a closer, a personal detail, a capital
    letter, an emoji, a hashtag (roots only)."""
    if rand() < 0.7:
        text = f"{text} {personal_detail(rand)}"
    if rand() < 0.15:
        text = OPENERS[int(rand() * len(OPENERS))] + text
    if rand() < 0.2:
        closers = CLOSERS[tone]
        text += closers[int(rand() * len(closers))]
    if rand() < 0.35:
        text = text[0].upper() + text[1:]
    decoration = rand()
    if decoration < 0.18:
        emoji = EMOJI[tone]
        return f"{text} {emoji[int(rand() * len(emoji))]}"
    if reply or decoration >= 0.36:
        return text
    if decoration < 0.30:
        tags = HASHTAGS[tone]
        return f"{text} {tags[int(rand() * len(tags))]}"
    return f"{text} {brand_hashtag(brand)}"


def compose(tone: str, brand: str, rng: random.Random, reply: bool) -> str:
    """Return one post (or reply) about ``brand`` that VADER reads as ``tone``.

    ``rng`` is the caller's seeded generator: the text is a pure function of its state.
    """
    return decorate(compose_body(tone, brand, rng, reply), tone, brand, rng.random, reply)


class TextBank:
    """Draws texts for one brand: a fresh body per post, decorated.

    Bodies are not pre-drawn into a fixed pool: a pool of a few thousand per tone made a
    third of a week's posts exact copies of each other, which the pipeline's
    near-duplicate rule (analysis.duplicates) rightly flags as copy-paste.
    """

    def __init__(self, brand: str) -> None:
        self.brand = brand

    def draw(self, tone: str, reply: bool, rng: random.Random) -> str:
        """One decorated text from the caller's seeded generator."""
        return compose(tone, self.brand, rng, reply)


@lru_cache(maxsize=64)
def text_bank(brand: str) -> TextBank:
    """The shared text source for ``brand``."""
    return TextBank(brand)


# The brand's care team answering a thread (demo.world.BrandCare): an opener, an offer
# and a sign-off, so replies vary as a real team's do.
_CARE_OPENERS = ("sorry about this", "so sorry to hear that", "thanks for flagging this",
                 "that's not the experience we want for you", "thanks for letting us know",
                 "we hear you", "good question")
_CARE_OFFERS = ("send us a DM with your order number and we'll make it right",
                "we've passed this to the store team and will follow up today",
                "could you DM us which location? we'll look into it",
                "a replacement drink is on us next time, just show this reply",
                "our team is checking this now, we'll get back to you shortly",
                "drop us a DM and we'll sort it out")
_CARE_SIGNOFFS = ("^JL", "^MK", "^AR", "- the {brand} team", "^SP", "")


def care_reply(brand: str, customer: str, rng: random.Random) -> str:
    """A reply from ``brand``'s care team to ``customer``, from the caller's generator."""
    sign = rng.choice(_CARE_SIGNOFFS).format(brand=brand)
    text = f"@{customer} {rng.choice(_CARE_OPENERS)}, {rng.choice(_CARE_OFFERS)}."
    return f"{text} {sign}" if sign else text
