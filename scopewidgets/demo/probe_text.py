"""Held-out text for measuring an SAE on the demo model: short modern English, and labelled concept sentences.

Everything here was written for this package (not taken from any corpus), so none of it is in the demo SAE's
training mix. Two uses:

- `short_modern_texts()` + `spliced_loss_increase(scope, texts)`: how much next-token loss rises when the SAE's
  reconstruction replaces the activation at its site, on short everyday texts (each text run on its own);
- `concept_probe_sentences()` + `concept_labels(tokenizer, text)`: sentences that mix common word classes
  (`CONCEPT_CLASSES`) with neutral ones, and per-token class labels, for a concept probe
  (`benchmarks/concept_probe.py`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from ..core.engine import Engine, SaeRef

CONCEPT_CLASSES: dict[str, frozenset[str]] = {
    name: frozenset(words.split())
    for name, words in {
        "cities": "paris london rome tokyo berlin madrid vienna chicago dublin athens boston sydney toronto "
        "seoul mumbai lisbon amsterdam barcelona prague denver seattle melbourne nairobi istanbul manchester",
        "countries": "france germany italy spain japan china canada mexico egypt poland greece brazil india "
        "kenya portugal australia norway sweden vietnam argentina ireland nigeria chile peru thailand",
        "months": "january february march april june july august september october november december",
        "colours": "red blue green yellow purple black white brown pink grey gray orange",
        "family": "mother father brother sister uncle aunt cousin son daughter wife husband grandmother "
        "grandfather grandma grandpa mum dad niece nephew parents brothers sisters cousins sons daughters",
        "numbers": "two three four five six seven eight nine ten eleven twelve fifteen twenty thirty forty "
        "fifty sixty eighty hundred",
        "weekdays": "monday tuesday wednesday thursday friday saturday sunday mondays thursdays fridays",
        "animals": "dog cat horse cow sheep lion tiger wolf bear rabbit fox goat pig duck owl squirrel deer "
        "parrot hamster whale puppy kitten dolphin elephant monkey snake frog dogs cats horses cows lions "
        "tigers rabbits pigs ducks dolphins ducklings",
        "body": "hand arm leg foot head eye nose mouth ear finger knee hands arms legs feet eyes ears fingers "
        "knees shoulder neck wrist ankle elbow thumb tooth teeth stomach elbows chin",
        "food": "bread cheese apple butter rice soup meat milk potato egg cake apples potatoes eggs pasta "
        "salad sandwich pizza banana bananas tomatoes yogurt noodles cookies porridge toast onion onions "
        "carrots sausages cakes",
        "professions": "doctor lawyer teacher farmer soldier priest nurse engineer sailor baker judge plumber "
        "pilot dentist accountant electrician chef firefighter architect programmer journalist mechanic "
        "pharmacist librarian surgeon nurses teachers firefighters",
        "metals": "gold silver iron copper steel lead tin bronze brass zinc aluminium titanium nickel platinum",
    }.items()
}
"""Twelve common word classes: lower-case word forms that count as the class (see `concept_labels`)."""

_CONCEPT_SENTENCES = """
On Monday my sister flew from London to Tokyo for a conference.
Our team meeting moved from Tuesday to Thursday afternoon.
The nurse asked my father to raise his left arm.
We ordered pizza and a green salad after the match on Friday.
My cousin in Toronto just adopted two cats from a shelter.
The new phone comes in black, white and a pale blue.
Her uncle works as an engineer at a car plant in Germany.
The concert in Berlin sold out in twelve minutes.
I burned my finger on the oven tray while baking bread.
Copper prices rose sharply in March after the mine closed.
My daughter wants a yellow raincoat for her birthday in October.
The dentist can see you on Wednesday at three.
We spent ten days driving around Portugal in a rented van.
A fox keeps getting into our bins at night.
The pharmacist said to take the tablets with milk.
Flights to Sydney are cheaper in February.
He swapped his steel watch strap for a titanium strap.
My grandmother still makes soup with potatoes and onions every Sunday.
The lawyer emailed the contract to my husband on Saturday morning.
Spain beat Italy on penalties in the final.
Our dog limped home after chasing a rabbit in the park.
She painted the kitchen walls a soft grey in January.
The pilot announced that we would land in Madrid in forty minutes.
I twisted my knee playing football with my brother.
They sell fresh cheese and butter at the market in Vienna.
The medal was gold, but the ribbon was red and white.
My aunt moved to Canada after she retired as a teacher.
The hamster escaped and hid behind the fridge for two days.
The school trip to Rome starts on a Tuesday in April.
He bought a brass lamp and an iron bed frame at the flea market.
The farmer moved the cows and sheep to higher ground before the storm.
My son broke his arm falling off his bike in June.
The chef added rice, eggs and a little butter to the pan.
Shipping costs from China doubled in September.
We watched a documentary about lions and tigers in Kenya.
The electrician will come again on Thursday to finish the wiring.
Her eyes were red from staring at the screen all day.
Prague and Amsterdam are both easy to explore by bike.
My wife works nights as a nurse at the hospital in Boston.
The recipe needs six eggs, a cup of milk and some flour.
A purple scarf was left on the train to Dublin.
The zinc roof on the shed needs replacing.
Mexico and Brazil will host some of the games in July.
The accountant sent the tax forms back with five questions.
My grandfather kept a goat, three ducks and two pigs.
The soldier on the poster wore a brown uniform.
I cut my thumb slicing tomatoes for the salad.
The museum in Athens opens late on Friday evenings.
Silver earrings and a copper bracelet were stolen from the shop.
Our landlord lives in Chicago and never answers emails.
The judge postponed the hearing until November.
My brother and his wife are expecting twins in August.
A horse stood alone in the field next to the motorway.
She wears pink trainers to the gym every Monday.
The teacher asked the kids to draw a blue whale.
Japan and Norway have the oldest populations in the survey.
The programmer fixed the bug in eight lines of code.
He has a sore neck and a stiff shoulder after the long flight.
We had apple pie and ice cream at a café in Lisbon.
The bronze statue in the square was cleaned last December.
Nickel and platinum are used in many car parts.
The cat sleeps on the radiator all winter.
My mum texted me a photo of her new glasses.
The plumber charged fifty pounds just to look at the sink.
Cousins from India and Egypt joined the family video call.
The bus to Seattle leaves at seven on Saturday mornings.
Wash your hands before you touch the bread.
The lead pipes in old houses can contaminate tap water.
Her nephew is studying to become an architect in Barcelona.
The sky over Melbourne turned orange from the bushfire smoke.
I keep a jar of rice in the cupboard for emergencies.
Greece and Ireland both reported strong tourist numbers in August.
The doctor looked at my ear and said it was just wax.
A wolf was spotted near a village in Poland last winter.
Tin cans are easy to recycle.
My dad grilled sausages and potatoes for nine people.
Their office in Seoul closes early on Wednesday.
The journalist interviewed the mayor of Mumbai about the floods.
She bought a purple tent for the festival in July.
The vet said our rabbit needs to lose weight.
An owl sat on the fence outside my window.
The aluminium frame makes the bike very light.
Thailand and Vietnam are popular with backpackers in January.
He hurt his elbow moving the sofa with his father.
The mechanic said the brakes need changing before Friday.
We eat pasta with cheese at least three times a week.
My sister works as a librarian in Denver.
A squirrel stole the peanuts from the bird feeder.
Australia sent twenty firefighters to help.
The leaves turn brown and yellow in October.
My daughter lost a tooth on Sunday and wants to tell everyone.
Steel and copper tariffs were announced in February.
The priest at the wedding was funny and kind.
A parrot in the pet shop kept saying hello to customers.
The yogurt and bananas are on the top shelf of the fridge.
Sweden and Argentina both won their matches on Tuesday.
The surgeon said my foot would heal in six weeks.
My aunt knits green hats for every baby in the family.
We rented a flat in Paris for four nights in September.
The engineer checked the bridge cables on Monday.
I dropped my phone and cracked the screen in Istanbul.
Nairobi has a fast growing tech scene.
My husband cooked noodles with egg and onion for dinner.
The sheep on the hill looked like white dots.
The firefighter carried the dog out of the burning flat.
Chile and Peru share a long border in the north.
Her grandfather gave her a gold ring before he died.
The tiger at the zoo paced up and down all morning.
She lifted the box with both hands and hurt her wrist.
The school closes for the holidays in December.
My cousin sells silver jewellery online.
Nurses and teachers marched through London on Saturday.
The toddler pointed at the cow and shouted.
The bread and cheese were gone within five minutes.
He flew to Vienna on Thursday for a job interview.
The kids painted the fence blue and the door red.
My brother is a pilot for a small airline in Canada.
The horses were nervous during the fireworks in November.
Her mother runs a small cake shop near the station.
The brass band played in the park every Sunday in June.
The baker starts work at four every morning.
I have a pain behind my eye when I stare at screens.
Germany and France signed a new energy deal in April.
A duck and her ducklings crossed the road in front of the bus.
Eleven people signed up for the cooking class on Wednesday.
Titanium implants are common in modern dentistry.
My father grows potatoes, carrots and tomatoes in his garden.
The farmer sold milk and eggs from a stall by the gate.
Rome was unbearably hot in August.
He wore a grey suit and a pink tie to the interview.
The lawyer and the judge spoke quietly before the trial began.
We got fifteen centimetres of snow in January.
A bear tipped over the bins at the campsite.
My grandmother broke her leg on the icy steps.
Iron deficiency can make you feel tired.
Flights from Mexico to Madrid were delayed on Friday.
My son wants a puppy, but my wife prefers cats.
The soup was too salty, so we added more rice.
The accountant and the architect shared an office in Berlin.
She wears a black dress and silver earrings for work events.
Our team in Japan starts its day when we finish ours.
The goat ate the washing off the line.
I need new glasses because my eyes get tired by Thursday.
Copper wire was stolen from the railway near Dublin.
My sister ran her first marathon in Chicago in October.
Thirty students took the exam on Tuesday.
The doctor asked me to open my mouth and say ah.
The kids had pasta, apple slices and a glass of milk.
Egypt and Kenya are building new solar farms.
My uncle keeps bees and a pair of horses on his land.
The nurse checked the cut on my hand and cleaned it.
We are flying to Lisbon in March with my parents.
The cat knocked a yellow mug off the desk.
His knee surgery is booked for September.
Zinc and vitamin C are sold in most pharmacies.
The teacher and the librarian organised a book fair on Friday.
Tokyo and Seoul are only a short flight apart.
The lion yawned and rolled over in the sun.
Butter, sugar and eggs are the base of most cakes.
She drove her brown van from Denver to Seattle.
The sailor told us the storm would pass by Sunday.
Twenty minutes later the rain stopped.
My aunt and uncle celebrated forty years of marriage in July.
Platinum is even rarer than gold.
He broke two fingers playing basketball.
India and Australia play the deciding match on Saturday.
The chef in Barcelona served grilled fish with potatoes.
The white rabbit hopped under the hedge.
My daughter started school in Amsterdam in August.
The soldier waved to his son from the train.
The bronze medal went to a runner from Norway.
I bumped my head on the cupboard door again.
Toast and a banana make a quick breakfast.
My father fixes old radios as a hobby.
Prague was cold and grey in February.
The mechanic found a nail in the front tyre on Monday.
The fox ran across the road in front of my car.
Seven people applied for the nurse job.
Brazil exports a lot of iron ore and coffee.
My mum makes better bread than anything from the shop.
The green bus to the airport runs every ten minutes.
A dentist in Toronto designed the new brace.
She scraped her elbow and both knees falling off her scooter.
We spent a week in Italy and two days in Greece.
The deer froze in the headlights.
The meat was cooked perfectly and the rice was fluffy.
My grandfather was a sailor before he became a farmer.
Aluminium cans are lighter than tin cans.
The judge in Sydney dismissed the case on Wednesday.
Eight of the twelve jurors agreed.
Her brother lives in Nigeria and works as a journalist.
I found a purple crayon in the washing machine.
Cheese toasties are what my son wants for lunch.
The steel bridge in Melbourne was repainted in November.
My cousin is a firefighter in Boston.
The horse took the apple from my hand.
We finally visited Vietnam in April.
Her shoulder hurts after carrying the baby all day.
The silver car in the driveway belongs to my neighbour.
A nickel allergy makes cheap earrings itchy.
The kitchen has copper pans hanging above the stove.
Gold prices hit a record high on Tuesday.
The old gate is made of iron and painted black.
They replaced the lead roof of the church.
A steel cable snapped during the storm.
The trophy is brass with a wooden base.
Stainless steel knives stay sharp longer.
The statue was cast in bronze by a local artist.
Tin was once mined all over the region.
The phone case is made of aluminium and glass.
Titanium bikes are light but expensive.
He bought his wife a platinum ring for their anniversary.
Zinc sheets cover the roofs of the old market halls.
The bins are collected every Tuesday.
I work from home on Mondays and Fridays.
The gym is quiet on Sunday evenings.
Payday falls on the last Thursday of the month.
Let's move the call to Wednesday if that works for you.
The exam results come out in August.
Our lease ends in March, so we are house hunting.
The clocks go back in October.
Hay fever starts for me in June.
The new series launches in January.
The kitten climbed the curtains and could not get down.
An elephant at the sanctuary painted with its trunk.
We saw dolphins from the ferry.
A monkey grabbed my sunglasses at the temple.
There is a frog living in our pond.
The snake at the pet shop was asleep under a lamp.
My neighbour walks her dog at six every morning.
The pigs rolled in the mud to keep cool.
Keep your elbows off the table.
The baby grabbed my nose and laughed.
I sprained my ankle on the stairs.
He has a tattoo on his arm and another on his neck.
Brush your teeth before bed.
My stomach hurts after that spicy curry.
She rubbed her eyes and went to sleep again.
The electrician and the plumber both arrived late.
Our teacher gave us homework over the weekend.
The pharmacist checked my prescription twice.
My cousin is training to be a chef.
The engineer on the call explained the outage.
A lawyer read the lease before we signed it.
I packed a sandwich, an apple and some crisps.
The pizza arrived cold again.
Add the onions to the pan and fry until soft.
We need milk, bread, eggs and bananas.
The cookies burned while I was on the phone.
She makes porridge with oat milk every morning.
The traffic light turned green and nobody moved.
Pick the blue folder, not the red folder.
Her new sofa is a deep green velvet.
I prefer white walls in small rooms.
The logo is black on a yellow background.
My parents are coming to stay for the weekend.
Her grandma sends voice notes instead of texts.
My niece started university this year.
His dad coaches the football team at the local school.
My brothers share a flat in Manchester.
The hospital in Manchester hired a hundred new nurses.
A pilot from Ireland flew the last plane out of Nairobi.
The surgeon in Paris operated on her ankle in December.
My grandpa still drives a red truck from Chile.
Four students from Peru won the coding contest in Istanbul.
The conference runs from Monday to Wednesday in late April.
My mother turns sixty in November, so we are planning a party.
She takes the nine o'clock train every Thursday.
There are five weeks until the holidays start in December.
Our rent goes up by ten percent in January.
The dentist said two of my teeth need fillings.
He rested his chin on his hand and closed his eyes.
The kids wore orange and purple costumes on Saturday.
Tickets for the show in Madrid went on sale in March.
Six friends from Argentina visited us in June.
My legs were sore for three days after the hike.
The baby has blue eyes and tiny fingers.
Four flights to Sweden were cancelled on Sunday.
The package from Japan arrived eleven days late.
The black cat crossed the road on a Friday.
We moved to Thailand in September with our two kids.
Her arms and legs were covered in mosquito bites.
The shop is open until eight on Thursdays.
Training starts at seven on Tuesday and Thursday evenings.
The pink and white flowers open in April.
My feet ache after standing for twelve hours.
Mexico won three gold medals in July.
He wore a red shirt and white trainers to the party.
The report is due on Friday, two weeks before the end of February.
My ears popped on the flight to Norway.
Seven of the nine lights in the office are broken.
The new term starts in September, on a Wednesday.
She carried the shopping bags in both arms.
Canada and Poland sent teams of forty athletes.
The bananas turned brown in two days.
The green and yellow flag of Brazil hung from the balcony.
We went to Dublin for three nights in November.
He kept his hands in his pockets and his head down.
Fifty people came to the open day on Saturday.
The parcel from Germany took six days to arrive.
The office is closed from Friday until the following Tuesday.
My mouth was dry before the presentation.
Our son was born in London on a Monday in July.
In October the park fills with red and yellow leaves.
The sale in Spain starts on the first Saturday of January.
A hundred runners started the race, and eighty finished.
He has had a cough since Wednesday.
I blinked and the grey car had already gone.
The wifi keeps dropping whenever someone uses the microwave.
Please remember to update your password before the deadline.
The printer on the second floor is out of toner again.
I can't find the charger for my laptop anywhere.
We should probably book the tickets before the prices go up.
The app crashed right after the latest update.
Could you send me the slides from the meeting?
The train was cancelled, so I took a taxi instead.
Traffic was terrible because of the roadworks.
He forgot to mute his microphone during the call.
The weather forecast says it will rain all weekend.
I finally finished reading that novel everyone was talking about.
The new coffee machine makes a strange noise.
Our neighbours are having their garden redone.
She spent the evening sorting out old photos.
The package was left outside the wrong door.
My headphones stopped charging this morning.
The parking app wants access to my location.
We are looking for a new flat closer to the office.
The council promised to fix the potholes by spring.
I think the battery needs replacing.
The referee blew the whistle and the crowd cheered.
Let me know if the link does not work.
The streaming service raised its prices again.
He left a long review complaining about the delivery.
The meeting ran over, so I missed my bus.
They are renovating the library this summer.
The heating comes on automatically at night.
I usually cycle to work when it is not raining.
The website was down for most of the afternoon.
She shared a link to the survey in the group chat.
Remember to bring a reusable bag to the shop.
The team celebrated the launch with a small party.
My laptop fan is louder than the television.
We watched the whole season in a single weekend.
The queue at the post office was out the door.
The speaker thanked everyone for coming.
Can we reschedule the interview to later this week?
The kids built a den out of cushions and blankets.
I left my umbrella on the bus again.
The new smartphone has a bigger screen and a better camera.
The company announced layoffs despite record profits.
Voters will choose a new mayor this autumn.
The match was delayed by heavy rain.
Our flight was overbooked, so we got vouchers.
He is learning to code in his spare time.
The supermarket has started charging for plastic bags.
I have been meaning to call you all week.
The router lights are blinking but nothing loads.
The film was much better than the reviews suggested.
We planted a few herbs on the balcony.
The shop assistant helped me find the right size.
They painted over the graffiti overnight.
It took ages to assemble the new wardrobe.
The electricity bill was higher than expected.
Someone parked across our driveway.
The podcast episode about sleep was fascinating.
Please sign the form and return it by email.
The hotel room had a view of the car park.
She is running for the local council.
"""

_SHORT_MODERN_TEXTS = """
I updated my phone last night and now the battery is empty by lunchtime. Has anyone else noticed this?
Quick reminder: the quarterly review has moved to Thursday at 2pm. Please bring your latest numbers.
Preheat the oven to 200 degrees. Toss the vegetables in olive oil and salt, then roast them for 25 minutes.
The home side equalised in the final minute, and the stadium went wild.
City officials say the new bike lanes have cut rush-hour traffic by almost a fifth.
Hi Sam, thanks for the quick reply. I've attached the revised draft, so let me know if anything looks off.
Our kitchen tap has been dripping for a week, and the plumber can't come until next month.
The update adds a dark mode, faster search and better support for older devices.
She ran the half marathon in just under two hours, her best time so far.
Researchers found that a short walk after dinner can help keep blood sugar steady.
Can you pick up some milk on your way home? We're also out of coffee.
The meeting was supposed to take thirty minutes, but it went on for almost two hours.
Shares in the chip maker jumped after it reported better than expected sales.
To reset your password, click the link in the email and follow the steps on screen.
We're running about ten minutes late because of an accident on the motorway.
The restaurant around the corner finally reopened, and the new menu is great.
Scientists have launched a small satellite to track methane leaks from space.
The kids spent the whole afternoon building a cardboard castle in the living room.
Please don't reply to this message. For help, visit our support page.
After three days of heavy rain, several roads in the valley are still closed.
I've been trying to drink more water and less coffee, with mixed results.
The striker signed a four-year contract with the club on Tuesday.
Stir the sauce gently and let it simmer until it thickens.
Thanks everyone for joining the call today. I'll share the recording and notes this afternoon.
The airline apologised after a software fault grounded dozens of flights.
My laptop keeps asking me to restart for updates at the worst possible moments.
Local volunteers cleaned up the beach on Saturday and collected over forty bags of rubbish.
The new train line will connect the airport with the city centre in under twenty minutes.
If the problem continues, try turning the router off and on again.
The museum is free on the first Sunday of every month.
He finally passed his driving test on the third attempt.
The government plans to raise the minimum wage next spring.
Add a pinch of chilli flakes if you like it spicy.
I'm working from home today, so message me if you need anything.
The team lost the first set but came back to win the match.
Our neighbours got a puppy, and it barks every time the doorbell rings.
Sales of electric cars rose again last year, helped by cheaper models.
Sorry for the slow response. I was away last week and I'm still catching up on emails.
The app now lets you split a bill with friends in a few taps.
Heavy snow is expected in the north overnight, with travel disruption likely.
She started a small business selling handmade candles online.
I can't believe how expensive concert tickets have become.
The council has approved plans for a new playground near the school.
Let the dough rest for an hour before you roll it out.
The company says no customer data was exposed in the attack.
We watched the sunset from the rooftop bar and then walked home along the river.
The goalkeeper made three brilliant saves in the second half.
Your order has been shipped and should arrive within two working days.
The hospital is recruiting more staff to shorten waiting times.
I set an alarm for six, but I slept right through it.
Could we push our call back by half an hour? Something urgent came up.
The new phone has a better camera but the same battery as last year's model.
Prices at the supermarket have gone up again, especially for fruit and vegetables.
He scored twice in the opening ten minutes and was named man of the match.
The library now lends out laptops and wifi hotspots as well as books.
Slice the onions thinly and cook them slowly until they turn golden.
The heatwave is expected to last until the end of the week.
I forgot my headphones, so the train ride felt twice as long.
The startup raised fresh funding to expand into three new markets.
Please find the invoice attached. Payment is due within thirty days.
Fans queued overnight to get tickets for the final.
She learned to knit during lockdown and hasn't stopped since.
The bridge will be closed for repairs for most of the summer.
Our dishwasher broke, so we're washing everything by hand this week.
The streaming platform is adding live sports to its basic plan.
Remember to back up your files before installing the new system.
Air pollution in the city fell sharply during the car-free weekend.
I tried the new ramen place downtown and the broth was amazing.
The coach said the players were tired after a long season.
We've moved the team lunch to Friday so that everyone can make it.
The charity raised enough money to open a second food bank.
The baby finally slept through the night, and we all feel human again.
A new study suggests that most people check their phones over a hundred times a day.
Mix the flour, sugar and butter until the mixture looks like breadcrumbs.
The election results will be announced early tomorrow morning.
My flight got cancelled, so I'm stuck at the airport until tomorrow.
The cyclist crashed near the finish line but still managed to take third place.
Thanks for your patience while we fix the issue. Service should be back within the hour.
They turned the old factory into flats, a gym and a row of small shops.
I'm thinking of switching energy suppliers, because the bills keep going up.
"""


def _lines(block: str) -> list[str]:
    return [line.strip() for line in block.strip().splitlines() if line.strip()]


def short_modern_texts() -> list[str]:
    """About 80 short modern English texts (1-3 sentences: technology, work e-mail, news, sport, cooking,
    daily life), written for this package, for checking the loss an SAE adds on everyday text.

    Example:
        >>> texts = short_modern_texts()
        >>> len(texts) >= 50, all(10 < len(t) < 200 for t in texts)
        (True, True)
    """
    return _lines(_SHORT_MODERN_TEXTS)


def concept_probe_sentences() -> list[str]:
    """Short modern sentences mixing the `CONCEPT_CLASSES` words (every class word is used in its class
    sense) with neutral sentences that hold none of them; label their tokens with `concept_labels`.

    Example:
        >>> sentences = concept_probe_sentences()
        >>> len(sentences) > 300, sentences[0]
        (True, 'On Monday my sister flew from London to Tokyo for a conference.')
    """
    return _lines(_CONCEPT_SENTENCES)


def concept_labels(tokenizer: Any, text: str) -> tuple[list[int], torch.Tensor]:
    """Token ids of `text` (no BOS) and `[n_tokens, n_classes]` labels, classes in `CONCEPT_CLASSES` order:
    1 where the token is the first token of a word of the class (matched in lower case), -1 on the later
    tokens of such a word (left out of scoring), 0 elsewhere.

    Example:
        >>> from scopewidgets.testing import tiny_tokenizer
        >>> ids, labels = concept_labels(tiny_tokenizer(), "My cat")   # one token per byte
        >>> labels[:, list(CONCEPT_CLASSES).index("animals")].tolist()
        [0, 0, 0, 1, -1, -1]
    """
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, spans = list(encoded["input_ids"]), encoded["offset_mapping"]
    labels = torch.zeros(len(ids), len(CONCEPT_CLASSES), dtype=torch.int8)
    for word in re.finditer(r"[A-Za-z]+", text):
        lower = word.group().lower()
        for column, words in enumerate(CONCEPT_CLASSES.values()):
            if lower not in words:
                continue
            inside = [i for i, (s, e) in enumerate(spans) if s < word.end() and e > word.start()]
            if inside:
                labels[inside, column] = -1
                labels[inside[0], column] = 1
    return ids, labels


def spliced_loss_increase(scope: Engine, texts: Sequence[str], sae: SaeRef = None) -> dict[str, float]:
    """Mean next-token cross-entropy (nats) on `texts`, clean and with the SAE's reconstruction spliced in at
    its site (every position but BOS), and the increase `spliced - clean`.

    Each text runs on its own, BOS first (short texts are not packed together), through the same
    machinery as `scope.evaluate`; means are over the predictions made from the text's own tokens (the one
    made from BOS is left out, as in `scope.evaluate`), so `predictions` = sum over texts of (tokens - 1).
    Texts of a single token are skipped; `texts` counts those used.

    Example:
        >>> from scopewidgets.testing import tiny_scope
        >>> result = spliced_loss_increase(tiny_scope(), ["The cat sat.", "Hello there, friend!"])
        >>> sorted(result), result["predictions"]
        (['ce_clean', 'ce_spliced', 'increase', 'predictions', 'texts'], 30)
    """
    from ..metrics import evaluate

    chosen = scope.sae(sae)
    by_length: dict[int, list[torch.Tensor]] = {}
    for text in texts:
        ids = scope.tokenize(text)
        if len(ids) >= 3:
            by_length.setdefault(len(ids), []).append(ids)
    if not by_length:
        raise ValueError("spliced_loss_increase needs texts of at least two tokens")
    clean = spliced = 0.0
    count = 0
    for length, rows in sorted(by_length.items()):
        table = evaluate(scope, torch.stack(rows), [chosen], seq_len=length)
        n = len(rows) * (length - 2)
        clean += float(table["ce_clean"].iloc[0]) * n
        spliced += float(table["ce_spliced"].iloc[0]) * n
        count += n
    return {
        "ce_clean": clean / count,
        "ce_spliced": spliced / count,
        "increase": (spliced - clean) / count,
        "predictions": count,
        "texts": sum(len(rows) for rows in by_length.values()),
    }
