"""Which ImageNet-1k classes are objects the Open Images detector (`openimages-ssd`) knows.

Used to measure "found on real photos": on a labelled ImageNet photo whose class is one of the
detector's objects, does the detector report that object? The mapping was decided from the class
definitions before looking at the detector's answers, by one rule:

    an ImageNet class maps to a detector label when every photo of that class shows, as its
    subject, a thing that label names (a beagle is a Dog; a barber chair is a Chair).

The answer is accepted when the detector reports the target label or a label that names the same
object one level up or down Open Images' class hierarchy (a Car is also a Vehicle; a Boot is
Footwear; a Desk is a Table; Mug and Coffee cup are the two cup classes). Classes left out:

* clothing (military uniform, suit, jersey, cloak, vestment, caps, masks): a photo of clothing
  often shows a person, but the class is the garment, not a Person;
* wild cats (lynx, snow leopard, tiger...) and wolves/foxes: Open Images' Cat and Dog are the
  domestic animals;
* park bench, four-poster, chiffonier, pool table, throne-less furniture: Open Images has
  separate Bench, Bed, Billiard table classes that this detector does not know;
* pitcher, packet, pencil box, envelope: not the Bottle or Box of Open Images;
* mobile home: a dwelling as often as a vehicle.

Vehicles other than cars (motor scooter, freight car, locomotive, bullet train) are Open Images
"Vehicle"s only through its hierarchy; they are measured separately (``GENERIC_VEHICLE``) and kept
out of the main figure, because the detector's own "Vehicle" class was trained on the boxes
annotated with that generic label, whose extent is not documented.
"""

from __future__ import annotations

DOG = frozenset({"Dog"})
CAR = frozenset({"Car", "Vehicle"})
FOOTWEAR = frozenset({"Footwear", "Boot", "High heels"})
CUP = frozenset({"Mug", "Coffee cup"})
TABLE = frozenset({"Desk", "Table"})
VEHICLE = frozenset({"Vehicle", "Car"})

#: ImageNet-1k class index -> accepted detector labels.
IMAGENET_TO_DETECTOR: dict[int, frozenset[str]] = {
    # 151-268: the domestic dog breeds of ImageNet-1k (Chihuahua ... Mexican hairless).
    **{index: DOG for index in range(151, 269)},
    # 281-285: domestic cats (tabby, tiger cat, Persian, Siamese, Egyptian cat).
    **{index: frozenset({"Cat"}) for index in range(281, 286)},
    345: frozenset({"Cattle"}),  # ox
    346: frozenset({"Cattle"}),  # water buffalo
    407: CAR,  # ambulance
    436: CAR,  # beach wagon (station wagon)
    468: CAR,  # cab (taxi)
    511: CAR,  # convertible
    609: CAR,  # jeep
    627: CAR,  # limousine
    656: CAR,  # minivan
    661: CAR,  # Model T
    717: CAR,  # pickup
    751: CAR,  # racer (race car)
    817: CAR,  # sports car
    757: VEHICLE,  # recreational vehicle
    444: frozenset({"Bicycle"}),  # bicycle-built-for-two
    671: frozenset({"Bicycle"}),  # mountain bike
    423: frozenset({"Chair"}),  # barber chair
    559: frozenset({"Chair"}),  # folding chair
    765: frozenset({"Chair"}),  # rocking chair
    857: frozenset({"Chair"}),  # throne
    526: TABLE,  # desk
    532: TABLE,  # dining table
    527: frozenset({"Computer monitor"}),  # desktop computer
    664: frozenset({"Computer monitor"}),  # monitor
    782: frozenset({"Computer monitor"}),  # screen
    620: frozenset({"Laptop"}),  # laptop
    681: frozenset({"Laptop"}),  # notebook (computer)
    673: frozenset({"Computer mouse"}),  # mouse (computer mouse)
    732: frozenset({"Camera"}),  # Polaroid camera
    759: frozenset({"Camera"}),  # reflex camera
    440: frozenset({"Bottle"}),  # beer bottle
    720: frozenset({"Bottle"}),  # pill bottle
    737: frozenset({"Bottle"}),  # pop bottle
    898: frozenset({"Bottle"}),  # water bottle
    907: frozenset({"Bottle"}),  # wine bottle
    968: CUP,  # cup
    504: CUP,  # coffee mug
    502: FOOTWEAR,  # clog
    514: FOOTWEAR,  # cowboy boot
    770: FOOTWEAR,  # running shoe
    774: FOOTWEAR,  # sandal
    630: FOOTWEAR,  # Loafer
    921: frozenset({"Book"}),  # book jacket
    478: frozenset({"Box"}),  # carton
}

#: Non-car vehicles: measured and printed apart from the main figure.
GENERIC_VEHICLE: dict[int, frozenset[str]] = {
    466: VEHICLE,  # bullet train
    565: VEHICLE,  # freight car
    670: VEHICLE,  # motor scooter
    820: VEHICLE,  # steam locomotive
}
