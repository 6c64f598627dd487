#include "data/synth.h"

#include <initializer_list>
#include <iterator>
#include <numeric>
#include <string_view>
#include <unordered_set>

#include "core/check.h"

namespace zerotune {
namespace {

// ---- vocabulary -------------------------------------------------------------------------------

struct Person {
  const char* name;
  const char* he;  // subject pronoun; capitalised by cap() at the start of a sentence
  const char* his;
  const char* him;
  const char* himself;
};

constexpr Person kPeople[] = {
    {"Natalia", "she", "her", "her", "herself"}, {"James", "he", "his", "him", "himself"},
    {"Maria", "she", "her", "her", "herself"},   {"Liam", "he", "his", "him", "himself"},
    {"Emma", "she", "her", "her", "herself"},    {"Omar", "he", "his", "him", "himself"},
    {"Sofia", "she", "her", "her", "herself"},   {"Carlos", "he", "his", "him", "himself"},
    {"Aisha", "she", "her", "her", "herself"},   {"Ben", "he", "his", "him", "himself"},
    {"Priya", "she", "her", "her", "herself"},   {"Ravi", "he", "his", "him", "himself"},
    {"Grace", "she", "her", "her", "herself"},   {"Tom", "he", "his", "him", "himself"},
    {"Hannah", "she", "her", "her", "herself"},  {"Lucas", "he", "his", "him", "himself"},
    {"Olivia", "she", "her", "her", "herself"},  {"Daniel", "he", "his", "him", "himself"},
    {"Mei", "she", "her", "her", "herself"},     {"Kenji", "he", "his", "him", "himself"},
    {"Chloe", "she", "her", "her", "herself"},   {"Samuel", "he", "his", "him", "himself"},
    {"Fatima", "she", "her", "her", "herself"},  {"Marco", "he", "his", "him", "himself"},
    {"Rosa", "she", "her", "her", "herself"},    {"Ethan", "he", "his", "him", "himself"},
    {"Julia", "she", "her", "her", "herself"},   {"Noah", "he", "his", "him", "himself"},
};

struct Item {
  const char* one;
  const char* many;
};

struct PricedItem {
  const char* one;
  const char* many;
  int64_t min_price, max_price;  // dollars
};

constexpr PricedItem kShopItems[] = {
    {"notebook", "notebooks", 2, 6}, {"pen", "pens", 1, 4},       {"book", "books", 6, 20},
    {"toy car", "toy cars", 3, 12},  {"shirt", "shirts", 10, 30}, {"mug", "mugs", 4, 12},
    {"cupcake", "cupcakes", 2, 5},   {"ball", "balls", 5, 15},    {"candle", "candles", 3, 9},
    {"puzzle", "puzzles", 8, 18},    {"comic", "comics", 2, 7},   {"plant", "plants", 5, 14},
};

constexpr Item kSmallThings[] = {
    {"sticker", "stickers"}, {"marble", "marbles"},   {"cookie", "cookies"},
    {"candy", "candies"},    {"card", "cards"},       {"stamp", "stamps"},
    {"bead", "beads"},       {"crayon", "crayons"},   {"seashell", "seashells"},
    {"pencil", "pencils"},   {"balloon", "balloons"}, {"button", "buttons"},
};

constexpr Item kContainers[] = {{"box", "boxes"}, {"bag", "bags"},       {"crate", "crates"},
                                {"jar", "jars"},  {"basket", "baskets"}, {"tray", "trays"}};

struct Vehicle {
  const char* name;
  int64_t min_speed, max_speed;  // miles per hour
};
constexpr Vehicle kVehicles[] = {{"car", 40, 70},   {"train", 50, 90}, {"bus", 30, 60},
                                 {"truck", 40, 65}, {"boat", 10, 30},  {"cyclist", 8, 16}};

struct Shop {
  const char* shop;
  const char* goods;
};
constexpr Shop kShops[] = {{"bakery", "muffins"},           {"toy store", "teddy bears"},
                           {"fruit stand", "oranges"},      {"bookstore", "books"},
                           {"flower shop", "roses"},        {"farm stand", "pumpkins"},
                           {"shoe store", "pairs of shoes"}};

struct Product {
  const char* name;
  int64_t min_tens, max_tens;  // price range in tens of dollars
};
constexpr Product kProducts[] = {{"jacket", 4, 20},  {"bike", 10, 40},     {"lamp", 2, 8},
                                 {"backpack", 2, 8}, {"video game", 2, 7}, {"tent", 8, 30},
                                 {"guitar", 10, 50}, {"watch", 5, 25}};

constexpr const char* kRelatives[] = {"sister", "brother",     "cousin",
                                      "friend", "grandmother", "neighbor"};
constexpr const char* kInstruments[] = {"piano", "guitar", "violin", "drums", "flute", "trumpet"};
constexpr const char* kGoals[] = {"bike",   "video game",     "tablet",
                                  "guitar", "pair of skates", "telescope"};
constexpr const char* kPlaces[] = {"garden", "park", "field", "playground", "yard", "pool"};
constexpr Item kFruits[] = {{"apple", "apples"},  {"orange", "oranges"}, {"pear", "pears"},
                            {"peach", "peaches"}, {"mango", "mangoes"},  {"lemon", "lemons"}};
constexpr int64_t kPercents[] = {10, 20, 25, 30, 40, 50, 60, 75, 80};

// ---- drawing values ---------------------------------------------------------------------------

int64_t pick(Rng& rng, int64_t lo, int64_t hi) {  // uniform in [lo, hi]
  return lo + static_cast<int64_t>(rng.below(static_cast<uint64_t>(hi - lo + 1)));
}

template <typename T, size_t N>
const T& choose(Rng& rng, const T (&options)[N]) {
  return options[rng.below(N)];
}

// `count` different people, so that "A is older than B" never compares someone with themself.
std::vector<Person> people(Rng& rng, int count) {
  std::vector<Person> out;
  while (static_cast<int>(out.size()) < count) {
    const Person& p = choose(rng, kPeople);
    bool taken = false;
    for (const Person& q : out) taken = taken || std::string_view(q.name) == p.name;
    if (!taken) out.push_back(p);
  }
  return out;
}

std::string cap(std::string_view word) {
  std::string out(word);
  if (!out.empty() && out[0] >= 'a' && out[0] <= 'z') out[0] = static_cast<char>(out[0] - 32);
  return out;
}

// ---- writing the worked answer ----------------------------------------------------------------

enum class Unit { plain, dollars };

struct Calc {
  int64_t value;
  std::string text;  // "48/2 = <<48/2=24>>24", or "12*5 = $<<12*5=60>>60" for dollars
};

class Work {
 public:
  Work(SynthProblem& problem, std::string_view template_name)
      : problem_(problem), template_name_(template_name) {}

  // operands[0] ops[0] operands[1] ... with ops all additive or all multiplicative, so that left to
  // right is also the conventional order and the annotation reads the same to a calculator.
  Calc calc(std::initializer_list<int64_t> operands, std::string_view ops,
            Unit unit = Unit::plain) {
    ZT_CHECK(operands.size() == ops.size() + 1 && !ops.empty(), where(), "operand count");
    const bool additive = ops.find_first_of("*/") == std::string_view::npos;
    const bool multiplicative = ops.find_first_of("+-") == std::string_view::npos;
    ZT_CHECK(additive || multiplicative, where(), "mixed operators in ", ops);
    const int64_t* x = operands.begin();
    int64_t value = x[0];
    std::string expr = std::to_string(x[0]);
    for (size_t i = 0; i < ops.size(); ++i) {
      const int64_t y = x[i + 1];
      switch (ops[i]) {
        case '+':
          value += y;
          break;
        case '-':
          value -= y;
          break;
        case '*':
          value *= y;
          break;
        case '/':
          ZT_CHECK(y != 0 && value % y == 0, where(), value, "/", y, " is not exact");
          value /= y;
          break;
        default:
          fail(str(where(), "unknown operator ", ops[i]));
      }
      ZT_CHECK(value >= 0, where(), expr, " goes negative");
      expr += ops[i];
      expr += std::to_string(y);
    }
    problem_.steps.push_back({expr, value});
    const std::string v = std::to_string(value);
    const char* dollar = unit == Unit::dollars ? "$" : "";
    return {value, str(expr, " = ", dollar, "<<", expr, "=", v, ">>", v)};
  }

  template <typename... Parts>
  void line(const Parts&... parts) {
    problem_.answer += str(parts...);
    problem_.answer += '\n';
  }

  template <typename... Parts>
  void question(const Parts&... parts) {
    problem_.question = str(parts...);
  }

  // The final line; the answer is always the last step's result.
  void finish() {
    ZT_CHECK(!problem_.steps.empty(), where(), "no steps");
    problem_.final_value = problem_.steps.back().value;
    problem_.answer += str("#### ", problem_.final_value);
  }

 private:
  std::string where() const { return str("synth template ", template_name_, ": internal error: "); }

  SynthProblem& problem_;
  std::string_view template_name_;
};

// ---- templates --------------------------------------------------------------------------------
// One regular phrasing each; the variety comes from the number of templates and their fillers.

void shopping_total(Rng& rng, Work& w) {
  const Person n = people(rng, 1)[0];
  const PricedItem& i1 = choose(rng, kShopItems);
  const PricedItem* i2 = &choose(rng, kShopItems);
  while (i2 == &i1) i2 = &choose(rng, kShopItems);
  const int64_t a = pick(rng, 2, 9), p = pick(rng, i1.min_price, i1.max_price);
  const int64_t b = pick(rng, 2, 9), q = pick(rng, i2->min_price, i2->max_price);
  w.question(n.name, " buys ", a, " ", i1.many, " for $", p, " each and ", b, " ", i2->many,
             " for $", q, " each. How much money does ", n.he, " spend in all?");
  const Calc x = w.calc({a, p}, "*", Unit::dollars);
  const Calc y = w.calc({b, q}, "*", Unit::dollars);
  w.line(n.name, " spends ", x.text, " on ", i1.many, ".");
  w.line(cap(n.he), " spends ", y.text, " on ", i2->many, ".");
  w.line("In all, ", n.he, " spends ", w.calc({x.value, y.value}, "+", Unit::dollars).text, ".");
}

void shopping_change(Rng& rng, Work& w) {
  const Person n = people(rng, 1)[0];
  const PricedItem& item = choose(rng, kShopItems);
  const int64_t a = pick(rng, 2, 8), p = pick(rng, item.min_price, item.max_price);
  const int64_t money = a * p + pick(rng, 1, 40);
  w.question(n.name, " has $", money, ". ", cap(n.he), " buys ", a, " ", item.many, " that cost $",
             p, " each. How much money does ", n.he, " have left?");
  const Calc cost = w.calc({a, p}, "*", Unit::dollars);
  w.line("The ", item.many, " cost ", cost.text, ".");
  w.line(n.name, " has ", w.calc({money, cost.value}, "-", Unit::dollars).text, " left.");
}

void age_times_future(Rng& rng, Work& w) {
  const std::vector<Person> p = people(rng, 2);
  const int64_t k = pick(rng, 2, 5), b = pick(rng, 2, 12), years = pick(rng, 2, 15);
  w.question(p[0].name, " is ", k, " times as old as ", p[1].name, ". ", p[1].name, " is ", b,
             " years old. How old will ", p[0].name, " be in ", years, " years?");
  const Calc now = w.calc({b, k}, "*");
  w.line(p[0].name, " is ", now.text, " years old now.");
  w.line("In ", years, " years, ", p[0].name, " will be ", w.calc({now.value, years}, "+").text,
         " years old.");
}

void age_sum(Rng& rng, Work& w) {
  const std::vector<Person> p = people(rng, 2);
  const int64_t d = pick(rng, 2, 30), b = pick(rng, 3, 50);
  w.question(p[0].name, " is ", d, " years older than ", p[1].name, ". ", p[1].name, " is ", b,
             " years old. What is the sum of their ages?");
  const Calc a = w.calc({b, d}, "+");
  w.line(p[0].name, " is ", a.text, " years old.");
  w.line("The sum of their ages is ", w.calc({a.value, b}, "+").text, " years.");
}

void distance(Rng& rng, Work& w) {
  const Vehicle& v = choose(rng, kVehicles);
  const int64_t s = pick(rng, v.min_speed, v.max_speed), h = pick(rng, 2, 8);
  w.question("A ", v.name, " travels at ", s, " miles per hour for ", h,
             " hours. How many miles does the ", v.name, " travel?");
  w.line("The ", v.name, " travels ", w.calc({s, h}, "*").text, " miles.");
}

void trip_time(Rng& rng, Work& w) {
  const Person n = people(rng, 1)[0];
  const int64_t s = pick(rng, 30, 70), hours = pick(rng, 1, 6);
  const int64_t d = s * hours;
  w.question(n.name, " drives ", d, " miles to visit ", n.his, " ", choose(rng, kRelatives), ". ",
             cap(n.he), " drives at ", s,
             " miles per hour. How many hours does the trip there and back take?");
  const Calc one_way = w.calc({d, s}, "/");
  w.line("The trip there takes ", one_way.text, " hours.");
  w.line("The trip there and back takes ", w.calc({one_way.value, 2}, "*").text, " hours.");
}

void sharing(Rng& rng, Work& w) {
  const Person n = people(rng, 1)[0];
  const Item& item = choose(rng, kSmallThings);
  const int64_t friends = pick(rng, 2, 8), each = pick(rng, 2, 15), keep = pick(rng, 1, 20);
  const int64_t total = friends * each + keep;
  w.question(n.name, " has ", total, " ", item.many, ". ", cap(n.he), " keeps ", keep, " for ",
             n.himself, " and shares the rest equally among ", friends, " friends. How many ",
             item.many, " does each friend get?");
  const Calc rest = w.calc({total, keep}, "-");
  w.line("After keeping ", keep, ", ", n.name, " has ", rest.text, " ", item.many, " left.");
  w.line("Each friend gets ", w.calc({rest.value, friends}, "/").text, " ", item.many, ".");
}

// A whole number n with n * percent / 100 whole: n is a multiple of 100 / gcd(percent, 100).
int64_t whole_for_percent(Rng& rng, int64_t percent, int64_t lo, int64_t hi) {
  const int64_t step = 100 / std::gcd(percent, int64_t{100});
  return step * pick(rng, (lo + step - 1) / step, hi / step);
}

void percent_left(Rng& rng, Work& w) {
  const Shop& shop = choose(rng, kShops);
  const int64_t percent = choose(rng, kPercents);
  const int64_t n = whole_for_percent(rng, percent, 20, 400);
  w.question("A ", shop.shop, " has ", n, " ", shop.goods, ". It sells ", percent,
             "% of them. How many ", shop.goods, " are left?");
  const Calc sold = w.calc({n, percent, 100}, "*/");
  w.line("The ", shop.shop, " sells ", sold.text, " ", shop.goods, ".");
  w.line("There are ", w.calc({n, sold.value}, "-").text, " ", shop.goods, " left.");
}

void discount(Rng& rng, Work& w) {
  const Product& product = choose(rng, kProducts);
  const int64_t percent = choose(rng, kPercents);
  const int64_t price =
      whole_for_percent(rng, percent, product.min_tens * 10, product.max_tens * 10);
  w.question("A ", product.name, " costs $", price, ". It is on sale for ", percent,
             "% off. How much does the ", product.name, " cost on sale?");
  const Calc off = w.calc({price, percent, 100}, "*/", Unit::dollars);
  w.line("The discount is ", off.text, ".");
  w.line("The sale price is ", w.calc({price, off.value}, "-", Unit::dollars).text, ".");
}

void time_hours(Rng& rng, Work& w) {
  const Person n = people(rng, 1)[0];
  constexpr int64_t kMinutes[] = {15, 20, 30, 40, 45, 90};
  const int64_t minutes = choose(rng, kMinutes);
  const int64_t day_step = 60 / std::gcd(minutes, int64_t{60});
  const int64_t days = day_step * pick(rng, 1, 28 / day_step);
  w.question(n.name, " practices the ", choose(rng, kInstruments), " for ", minutes,
             " minutes every day. How many hours does ", n.he, " practice in ", days, " days?");
  const Calc total = w.calc({minutes, days}, "*");
  w.line(n.name, " practices ", total.text, " minutes.");
  w.line("That is ", w.calc({total.value, 60}, "/").text, " hours.");
}

void savings_weeks(Rng& rng, Work& w) {
  const Person n = people(rng, 1)[0];
  const int64_t weekly = pick(rng, 3, 25), weeks = pick(rng, 2, 20), start = pick(rng, 5, 80);
  const int64_t goal = start + weekly * weeks;
  w.question(n.name, " wants to buy a ", choose(rng, kGoals), " that costs $", goal, ". ",
             cap(n.he), " already has $", start, " and saves $", weekly,
             " each week. How many weeks will it take ", n.him, " to have enough money?");
  const Calc needed = w.calc({goal, start}, "-", Unit::dollars);
  w.line(n.name, " still needs ", needed.text, ".");
  w.line("It will take ", w.calc({needed.value, weekly}, "/").text, " weeks.");
}

void groups_total(Rng& rng, Work& w) {
  const Item& box = choose(rng, kContainers);
  const Item& item = choose(rng, kSmallThings);
  const int64_t g = pick(rng, 2, 15), k = pick(rng, 3, 30);
  w.question("There are ", g, " ", box.many, " with ", k, " ", item.many, " in each ", box.one,
             ". How many ", item.many, " are there in total?");
  w.line("There are ", w.calc({g, k}, "*").text, " ", item.many, " in total.");
}

void groups_broken(Rng& rng, Work& w) {
  const Person n = people(rng, 1)[0];
  const Item& item = choose(rng, kSmallThings);
  const int64_t packs = pick(rng, 2, 12), per_pack = pick(rng, 4, 24);
  const int64_t broken = pick(rng, 2, packs * per_pack / 3);
  w.question(n.name, " buys ", packs, " packs of ", item.many, " with ", per_pack,
             " in each pack. ", broken, " of the ", item.many, " are broken. How many ", item.many,
             " are not broken?");
  const Calc total = w.calc({packs, per_pack}, "*");
  w.line(n.name, " buys ", total.text, " ", item.many, ".");
  w.line(cap(n.he), " has ", w.calc({total.value, broken}, "-").text, " ", item.many,
         " that are not broken.");
}

void difference_together(Rng& rng, Work& w) {
  const std::vector<Person> p = people(rng, 2);
  const Item& item = choose(rng, kSmallThings);
  const int64_t a = pick(rng, 10, 90), fewer = pick(rng, 2, a - 1);
  w.question(p[0].name, " has ", a, " ", item.many, ". ", p[1].name, " has ", fewer, " fewer ",
             item.many, " than ", p[0].name, ". How many ", item.many, " do they have together?");
  const Calc b = w.calc({a, fewer}, "-");
  w.line(p[1].name, " has ", b.text, " ", item.many, ".");
  w.line("Together they have ", w.calc({a, b.value}, "+").text, " ", item.many, ".");
}

void wages(Rng& rng, Work& w) {
  const Person n = people(rng, 1)[0];
  const int64_t rate = pick(rng, 8, 30), hours = pick(rng, 2, 9), days = pick(rng, 2, 7);
  w.question(n.name, " earns $", rate, " per hour. ", cap(n.he), " works ", hours,
             " hours a day for ", days, " days. How much money does ", n.he, " earn?");
  const Calc total_hours = w.calc({hours, days}, "*");
  w.line(n.name, " works ", total_hours.text, " hours.");
  w.line(cap(n.he), " earns ", w.calc({total_hours.value, rate}, "*", Unit::dollars).text, ".");
}

void half_then_more(Rng& rng, Work& w) {
  const Person n = people(rng, 1)[0];
  const Item& item = choose(rng, kSmallThings);
  const int64_t had = 2 * pick(rng, 5, 50), more = pick(rng, 2, 30);
  w.question(n.name, " had ", had, " ", item.many, ". ", cap(n.he), " gave half of them to ", n.his,
             " ", choose(rng, kRelatives), " and then bought ", more, " more. How many ", item.many,
             " does ", n.name, " have now?");
  const Calc gave = w.calc({had, 2}, "/");
  w.line(n.name, " gave away ", gave.text, " ", item.many, ".");
  const Calc left = w.calc({had, gave.value}, "-");
  w.line(cap(n.he), " had ", left.text, " ", item.many, " left.");
  w.line("After buying more, ", n.he, " has ", w.calc({left.value, more}, "+").text, " ", item.many,
         ".");
}

void reading_days(Rng& rng, Work& w) {
  const Person n = people(rng, 1)[0];
  const int64_t per_day = pick(rng, 5, 40), days = pick(rng, 3, 20);
  w.question("A book has ", per_day * days, " pages. ", n.name, " reads ", per_day,
             " pages every day. How many days will it take ", n.him, " to finish the book?");
  w.line("It will take ", n.name, " ", w.calc({per_day * days, per_day}, "/").text, " days.");
}

void buses(Rng& rng, Work& w) {
  const int64_t seats = pick(rng, 20, 50), count = pick(rng, 2, 9);
  const int64_t first = pick(rng, seats / 2, seats * count - seats / 2);
  const int64_t second = seats * count - first;
  w.question("One class has ", first, " students and another class has ", second,
             " students. They go on a trip in buses that hold ", seats,
             " students each, and every bus is full. How many buses do they need?");
  const Calc students = w.calc({first, second}, "+");
  w.line("There are ", students.text, " students.");
  w.line("They need ", w.calc({students.value, seats}, "/").text, " buses.");
}

void perimeter_walk(Rng& rng, Work& w) {
  const Person n = people(rng, 1)[0];
  const char* place = choose(rng, kPlaces);
  const int64_t len = pick(rng, 10, 90), wid = pick(rng, 5, 60), laps = pick(rng, 2, 6);
  w.question("A rectangular ", place, " is ", len, " meters long and ", wid, " meters wide. ",
             n.name, " walks around it ", laps, " times. How many meters does ", n.he, " walk?");
  const Calc around = w.calc({len, wid, len, wid}, "+++");
  w.line("Once around the ", place, " is ", around.text, " meters.");
  w.line(n.name, " walks ", w.calc({around.value, laps}, "*").text, " meters.");
}

void three_days_running(Rng& rng, Work& w) {
  const Person n = people(rng, 1)[0];
  const int64_t mon = pick(rng, 2, 9), tue = pick(rng, 2, 9);
  w.question(
      n.name, " runs ", mon, " miles on Monday and ", tue, " miles on Tuesday. On Wednesday ", n.he,
      " runs twice as far as on Monday. How many miles does ", n.he, " run in the three days?");
  const Calc wed = w.calc({mon, 2}, "*");
  w.line("On Wednesday ", n.he, " runs ", wed.text, " miles.");
  w.line("In total ", n.he, " runs ", w.calc({mon, tue, wed.value}, "++").text, " miles.");
}

void money_friends(Rng& rng, Work& w) {
  const std::vector<Person> p = people(rng, 3);
  const int64_t a = pick(rng, 5, 60), k = pick(rng, 2, 4);
  const int64_t less = pick(rng, 1, a * k - 1);
  w.question(p[0].name, " has $", a, ". ", p[1].name, " has ", k, " times as much money as ",
             p[0].name, ". ", p[2].name, " has $", less, " less than ", p[1].name,
             ". How much money do the three of them have in total?");
  const Calc b = w.calc({a, k}, "*", Unit::dollars);
  w.line(p[1].name, " has ", b.text, ".");
  const Calc c = w.calc({b.value, less}, "-", Unit::dollars);
  w.line(p[2].name, " has ", c.text, ".");
  w.line("In total they have ", w.calc({a, b.value, c.value}, "++", Unit::dollars).text, ".");
}

void basket_weight(Rng& rng, Work& w) {
  const Item& fruit = choose(rng, kFruits);
  const int64_t grams = 10 * pick(rng, 8, 30), per_basket = pick(rng, 4, 20);
  const int64_t baskets = pick(rng, 2, 6);
  w.question("Each ", fruit.one, " weighs ", grams, " grams. A basket holds ", per_basket, " ",
             fruit.many, ". How many grams do ", baskets, " baskets of ", fruit.many, " weigh?");
  const Calc one = w.calc({per_basket, grams}, "*");
  w.line("One basket of ", fruit.many, " weighs ", one.text, " grams.");
  w.line(baskets, " baskets weigh ", w.calc({one.value, baskets}, "*").text, " grams.");
}

void unit_price(Rng& rng, Work& w) {
  const PricedItem& item = choose(rng, kShopItems);
  const int64_t each = pick(rng, item.min_price, item.max_price);
  const int64_t k = pick(rng, 2, 8), m = pick(rng, 2, 12);
  w.question(k, " ", item.many, " cost $", k * each, ". How much do ", m, " ", item.many, " cost?");
  const Calc one = w.calc({k * each, k}, "/", Unit::dollars);
  w.line("One ", item.one, " costs ", one.text, ".");
  w.line(m, " ", item.many, " cost ", w.calc({m, one.value}, "*", Unit::dollars).text, ".");
}

void farm_legs(Rng& rng, Work& w) {
  const int64_t chickens = pick(rng, 2, 40), cows = pick(rng, 2, 25);
  w.question("A farm has ", chickens, " chickens and ", cows,
             " cows. How many legs do the animals have in total?");
  const Calc chicken_legs = w.calc({chickens, 2}, "*");
  w.line("The chickens have ", chicken_legs.text, " legs.");
  const Calc cow_legs = w.calc({cows, 4}, "*");
  w.line("The cows have ", cow_legs.text, " legs.");
  w.line("In total there are ", w.calc({chicken_legs.value, cow_legs.value}, "+").text, " legs.");
}

void fruit_trees(Rng& rng, Work& w) {
  const Person n = people(rng, 1)[0];
  const Item& fruit = choose(rng, kFruits);
  const int64_t trees = pick(rng, 2, 12), per_tree = pick(rng, 5, 40);
  const int64_t eaten = pick(rng, 2, trees * per_tree / 4 + 1);
  w.question(n.name, " has ", trees, " ", fruit.one, " trees. Each tree grows ", per_tree, " ",
             fruit.many, ". ", cap(n.he), " eats ", eaten, " of them. How many ", fruit.many,
             " are left?");
  const Calc grown = w.calc({trees, per_tree}, "*");
  w.line("The trees grow ", grown.text, " ", fruit.many, ".");
  w.line("After eating some, ", n.name, " has ", w.calc({grown.value, eaten}, "-").text, " ",
         fruit.many, " left.");
}

struct Template {
  const char* name;
  void (*fill)(Rng&, Work&);
};

constexpr Template kTemplates[] = {
    {"shopping_total", shopping_total},
    {"shopping_change", shopping_change},
    {"age_times_future", age_times_future},
    {"age_sum", age_sum},
    {"distance", distance},
    {"trip_time", trip_time},
    {"sharing", sharing},
    {"percent_left", percent_left},
    {"discount", discount},
    {"time_hours", time_hours},
    {"savings_weeks", savings_weeks},
    {"groups_total", groups_total},
    {"groups_broken", groups_broken},
    {"difference_together", difference_together},
    {"wages", wages},
    {"half_then_more", half_then_more},
    {"reading_days", reading_days},
    {"buses", buses},
    {"perimeter_walk", perimeter_walk},
    {"three_days_running", three_days_running},
    {"money_friends", money_friends},
    {"basket_weight", basket_weight},
    {"unit_price", unit_price},
    {"farm_legs", farm_legs},
    {"fruit_trees", fruit_trees},
};
constexpr int kTemplateCount = static_cast<int>(std::size(kTemplates));

}  // namespace

const std::vector<std::string>& synth_template_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const Template& t : kTemplates) out.emplace_back(t.name);
    return out;
  }();
  return names;
}

SynthProblem synth_problem(Rng& rng, int template_id) {
  ZT_CHECK(template_id >= 0 && template_id < kTemplateCount, "synth_problem: template_id ",
           template_id, " is outside [0, ", kTemplateCount, ")");
  SynthProblem problem;
  problem.template_id = template_id;
  Work work(problem, kTemplates[template_id].name);
  kTemplates[template_id].fill(rng, work);
  work.finish();
  return problem;
}

SynthProblem synth_problem(Rng& rng) {
  return synth_problem(rng, static_cast<int>(rng.below(kTemplateCount)));
}

SynthDataset synth_dataset(int64_t train, int64_t test, uint64_t seed) {
  ZT_CHECK(train >= 0 && test >= 0, "synth: --train and --test must be non-negative, got ", train,
           " and ", test);
  // Far above the distinct problems the templates can produce in practice; the bound turns an
  // impossible request into an error instead of an endless loop.
  const int64_t max_draws = 50 * (train + test) + 100000;
  Rng rng(seed);
  std::unordered_set<std::string> seen;
  SynthDataset out;
  int64_t draws = 0;
  while (static_cast<int64_t>(out.train.size() + out.test.size()) < train + test) {
    ZT_CHECK(draws++ < max_draws, "synth: only ", seen.size(), " distinct problems after ",
             max_draws, " draws; ask for fewer than ", train + test);
    SynthProblem problem = synth_problem(rng);
    if (!seen.insert(problem.question).second) continue;
    auto& split = static_cast<int64_t>(out.train.size()) < train ? out.train : out.test;
    split.push_back(std::move(problem));
  }
  return out;
}

}  // namespace zerotune
