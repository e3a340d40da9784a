"""Built-in word lists for synthetic UK people and places (no external data sets).

Given names are grouped by sex and by the era a person was born in, so a woman
born in 1935 is a Joan or a Doris and a girl born in 2015 an Isla or a Freya.
Family names follow their rough frequency in England and Wales (most common
first); the generator weights them by rank. Street stems and suffixes make the
few hundred streets of the one synthetic town, Ashcombe.
"""

from __future__ import annotations

# Birth-year bounds of each era: names of the first era whose bound is above the year.
ERA_BOUNDS: tuple[int, ...] = (1950, 1980, 2000, 9999)

GIVEN_MALE: tuple[tuple[str, ...], ...] = (
    (
        "John", "William", "George", "James", "Thomas", "Arthur", "Albert", "Frederick",
        "Harold", "Ernest", "Robert", "Charles", "Henry", "Walter", "Leonard", "Stanley",
        "Kenneth", "Raymond", "Dennis", "Ronald", "Donald", "Peter", "Frank", "Alfred",
        "Edward", "Sidney", "Norman", "Eric", "Cyril", "Reginald", "Gordon", "Herbert",
    ),
    (
        "David", "John", "Michael", "Paul", "Andrew", "Mark", "Stephen", "Peter", "Robert",
        "Ian", "Richard", "Christopher", "Gary", "Martin", "Simon", "Kevin", "Alan",
        "Anthony", "Steven", "Neil", "Darren", "Lee", "Jason", "Wayne", "Craig", "Keith",
        "Graham", "Philip", "Nigel", "Colin", "Trevor", "Barry",
    ),
    (
        "Daniel", "Thomas", "James", "Matthew", "Christopher", "Michael", "Adam", "Luke",
        "Jamie", "Ryan", "Benjamin", "Liam", "Jack", "Joshua", "Samuel", "Craig", "Lewis",
        "Jordan", "Scott", "Kieran", "Nathan", "Callum", "Dean", "Carl", "Aaron", "Andrew",
        "Stuart", "Jonathan", "Mohammed", "Ashley", "Imran", "Tomasz",
    ),
    (
        "Oliver", "Jack", "Harry", "George", "Noah", "Charlie", "Jacob", "Alfie", "Freddie",
        "Oscar", "Leo", "Logan", "Archie", "Theo", "Thomas", "James", "Joshua", "Ethan",
        "William", "Mason", "Riley", "Muhammad", "Alexander", "Max", "Lucas", "Isaac",
        "Dylan", "Tyler", "Kai", "Harrison", "Reuben", "Ibrahim",
    ),
)

GIVEN_FEMALE: tuple[tuple[str, ...], ...] = (
    (
        "Mary", "Margaret", "Joan", "Dorothy", "Doris", "Jean", "Joyce", "Betty", "Irene",
        "Elsie", "Edna", "Hilda", "Vera", "Kathleen", "Eileen", "Barbara", "Marjorie",
        "Gladys", "Winifred", "Sheila", "Audrey", "Phyllis", "Patricia", "Iris", "Violet",
        "Ivy", "Florence", "Lilian", "Ethel", "Maureen", "Evelyn", "Muriel",
    ),
    (
        "Susan", "Julie", "Karen", "Linda", "Deborah", "Sarah", "Elizabeth", "Jacqueline",
        "Alison", "Tracey", "Carol", "Christine", "Helen", "Amanda", "Sharon", "Angela",
        "Janet", "Lisa", "Nicola", "Joanne", "Wendy", "Gillian", "Dawn", "Michelle",
        "Catherine", "Jane", "Lorraine", "Pauline", "Sandra", "Diane", "Denise", "Beverley",
    ),
    (
        "Sarah", "Laura", "Emma", "Rebecca", "Gemma", "Hannah", "Amy", "Claire", "Jessica",
        "Lauren", "Charlotte", "Sophie", "Stacey", "Kelly", "Danielle", "Natalie", "Victoria",
        "Jennifer", "Nicola", "Samantha", "Louise", "Katie", "Rachel", "Hayley", "Zoe",
        "Leanne", "Jade", "Chloe", "Kirsty", "Holly", "Nadia", "Agnieszka",
    ),
    (
        "Olivia", "Amelia", "Isla", "Ava", "Emily", "Sophia", "Grace", "Mia", "Poppy", "Ella",
        "Lily", "Evie", "Isabella", "Sophie", "Ivy", "Freya", "Harper", "Willow", "Isabelle",
        "Daisy", "Ruby", "Florence", "Chloe", "Jessica", "Erin", "Maisie", "Millie",
        "Phoebe", "Scarlett", "Aisha", "Zara", "Maryam",
    ),
)

# Short forms a second record of the same person is often typed under.
NICKNAMES: dict[str, str] = {
    "William": "Bill", "Robert": "Bob", "Margaret": "Peggy", "Elizabeth": "Liz",
    "Thomas": "Tom", "James": "Jim", "Michael": "Mike", "Christopher": "Chris",
    "Daniel": "Dan", "Matthew": "Matt", "Samantha": "Sam", "Jennifer": "Jenny",
    "Rebecca": "Becky", "Joshua": "Josh", "Alexander": "Alex", "Kathleen": "Kath",
    "Patricia": "Pat", "Susan": "Sue", "Deborah": "Debbie", "Frederick": "Fred",
    "Benjamin": "Ben", "Stephen": "Steve", "Anthony": "Tony", "Jacqueline": "Jackie",
    "Nicola": "Nicky", "Victoria": "Vicky", "Catherine": "Cathy", "Edward": "Ted",
}

FAMILY_NAMES: tuple[str, ...] = (
    "Smith", "Jones", "Williams", "Taylor", "Brown", "Davies", "Evans", "Wilson", "Thomas",
    "Johnson", "Roberts", "Robinson", "Thompson", "Wright", "Walker", "White", "Edwards",
    "Hughes", "Green", "Hall", "Lewis", "Harris", "Clarke", "Patel", "Jackson", "Wood",
    "Turner", "Martin", "Cooper", "Hill", "Ward", "Morris", "Moore", "Clark", "Lee", "King",
    "Baker", "Harrison", "Morgan", "Allen", "James", "Scott", "Phillips", "Watson", "Davis",
    "Parker", "Price", "Bennett", "Young", "Griffiths", "Mitchell", "Kelly", "Cook", "Carter",
    "Richardson", "Bailey", "Collins", "Bell", "Shaw", "Murphy", "Miller", "Cox", "Richards",
    "Khan", "Marshall", "Anderson", "Simpson", "Ellis", "Adams", "Singh", "Begum",
    "Wilkinson", "Foster", "Chapman", "Powell", "Webb", "Rogers", "Gray", "Mason", "Ali",
    "Hunt", "Hussain", "Campbell", "Matthews", "Owen", "Palmer", "Holmes", "Mills", "Barnes",
    "Knight", "Lloyd", "Butler", "Russell", "Barker", "Fisher", "Stevens", "Jenkins",
    "Murray", "Dixon", "Harvey", "Graham", "Pearson", "Ahmed", "Fletcher", "Walsh", "Kaur",
    "Gibson", "Howard", "Andrews", "Stewart", "Elliott", "Reynolds", "Saunders", "Payne",
    "Fox", "Ford", "Pearce", "Day", "Brooks", "West", "Lawrence", "Cole", "Atkinson",
    "Bradley", "Spencer", "Gill", "Dawson", "Ball", "Burton", "O'Brien", "Watts", "Rose",
    "Booth", "Perry", "Ryan", "Grant", "Wells", "Armstrong", "Francis", "Rees", "Hayes",
    "Hart", "Hudson", "Newman", "Barrett", "Webster", "Hunter", "Gregory", "Carr", "Lowe",
    "Page", "Marsh", "Riley", "Dunn", "Woods", "Parsons", "Berry", "Stone", "Reid",
    "Holland", "Hawkins", "Harding", "Porter", "Robertson", "Newton", "Oliver", "Reed",
    "Kennedy", "Williamson", "Bird", "Gardner", "Shah", "Dean", "Lane", "Cooke", "Bates",
    "Henderson", "Parry", "Burgess", "Bishop", "Walton", "Burns", "Nicholson", "Shepherd",
    "Ross", "Cross", "Long", "Freeman", "Warren", "Nicholls", "Hamilton", "Byrne", "Sutton",
    "McDonald", "Yates", "Hodgson", "Robson", "Curtis", "Hopkins", "O'Connor", "Harper",
    "Coleman", "Watkins", "Moss", "McCarthy", "Chambers", "O'Neill", "Griffin", "Sharp",
    "Hardy", "Wheeler", "Potter", "Osborne", "Johnston", "Gordon", "Doyle", "Wallace",
    "George", "Jordan", "Hutchinson", "Rowe", "Burke", "May", "Pritchard", "Gilbert",
    "Willis", "Higgins", "Read", "Miah", "Akhtar", "Kowalski", "Nowak", "Mensah", "Okafor",
    "Osei", "Kaminski", "Popescu",
)

STREET_STEMS: tuple[str, ...] = (
    "Church", "Station", "Victoria", "Park", "Queens", "Mill", "Chapel", "Albert",
    "Springfield", "Manor", "Windsor", "Grange", "Highfield", "Orchard", "Meadow", "Oak",
    "Ash", "Beech", "Elm", "Willow", "Cedar", "Hawthorn", "Rowan", "Birch", "Chestnut",
    "Sycamore", "Holly", "Laburnum", "Primrose", "Bluebell", "Heather", "Kingsway",
    "Westfield", "Northfield", "Southfield", "Brook", "Riverside", "Bridge", "Market",
    "Castle", "Abbey", "Priory", "Rectory", "Vicarage", "School", "Green", "Moor", "Hill",
    "Valley", "Forest", "Lime", "Poplar", "Maple", "Hazel", "Alder", "Larch", "Fern",
    "Clover", "Foxglove", "Lavender", "Juniper", "Kestrel", "Heron", "Swallow", "Lark",
    "Wren", "Falcon", "Nelson", "Wellington", "Gladstone", "Cromwell", "Stanley",
    "Cavendish", "Milton", "Shakespeare", "Tennyson", "Byron", "Wordsworth", "Coronation",
    "Jubilee", "Festival", "Trinity", "St John's", "St Mary's", "Ashcombe", "Carlton",
    "Belmont", "Clarence", "Regent", "Portland", "Alexandra", "Cambridge", "Oxford", "York",
    "Lancaster", "Cheviot", "Pennine", "Malvern",
)

STREET_SUFFIXES: tuple[str, ...] = (
    "Road", "Street", "Avenue", "Close", "Lane", "Drive", "Way", "Crescent", "Grove",
    "Gardens", "Terrace", "Place", "Court", "Walk", "Rise", "View",
)

# Localities of Ashcombe and the postcode district each lies in.
LOCALITIES: tuple[tuple[str, str], ...] = (
    ("Town Centre", "AS1"), ("Northfield", "AS2"), ("Eastbrook", "AS3"), ("Millbank", "AS4"),
    ("Southmoor", "AS5"), ("Westleigh", "AS6"), ("Hilltop", "AS7"), ("Riverside", "AS8"),
    ("Oakdene", "AS9"),
)

TOWN = "Ashcombe"

HOUSE_NAMES: tuple[str, ...] = (
    "Rose Cottage", "The Laurels", "Ivy House", "The Willows", "Orchard House",
    "Fairview", "The Old Forge", "Meadow View", "Hillside", "The Bungalow", "Woodlands",
    "The Cottage", "Brookside", "Holly Lodge", "The Old School House",
)

BLOCK_NAMES: tuple[str, ...] = (
    "Mercer House", "Priory Court", "Victoria Mansions", "Kestrel Tower", "Alder House",
    "Jubilee Court", "Wordsworth House", "Regent Point", "Clarence Court", "Heron Lodge",
)

# Letters Royal Mail uses in the inward code's unit part.
INWARD_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"

PROVIDER_KINDS: tuple[tuple[str, str], ...] = (
    ("HC", "Home Care Ltd"), ("HC", "Homecare Services"), ("RES", "Care Home"),
    ("NUR", "Nursing Home"), ("DAY", "Day Centre"), ("TEL", "Telecare"),
    ("RESP", "Respite Lodge"), ("MEAL", "Community Meals"), ("FOST", "Fostering Agency"),
)
