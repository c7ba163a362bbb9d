/* gen.c - etld-gen, a deterministic generator of Sparkify-shaped data.
 *
 * Benchmarks and tests need data sets of any size that look like the public
 * bucket (s3://udacity-dend): song files under song_data/A/X/Y/TR*.json, one
 * JSON object each, written the way Python's json.dumps wrote them; event logs
 * under log_data/YYYY/MM/YYYY-MM-DD-events.json, one compact object per line,
 * with every oddity of the real logs (userId always a string and "" when logged
 * out, null song fields off NextSong, ts in epoch ms ending in 796, escaped
 * slashes, doubly-encoded non-ASCII text, repeated timestamps, users changing
 * level); and log_json_path.json, byte for byte the JSONPaths file of the
 * bucket.  A share of NextSong events names a generated song exactly (title,
 * artist name and duration printed with the same digits) so the songplays join
 * has something to find; a few match on title only.
 *
 * The output is a pure function of the seed and the sizes: one splitmix64
 * stream per part (songs, users, events), integers for every printed number,
 * no clock, no locale.  Songs do not depend on --events, so two sizes of logs
 * share one song set.  Memory holds the songs, a catalogue of other tracks and
 * one day of events; files are written through one buffer.
 *
 * This is a tool, not a part of etld: it links nothing of the project. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_SONGS 100000000ULL
#define MAX_EVENTS 500000000ULL
#define MAX_TRACKS 4000000ULL
#define MAX_DAYS 3650ULL
#define DAY_S 86400
#define OUT_BUFSZ (1U << 20)
#define NO_USER UINT32_MAX
/* 2018-11-01T00:00:00Z, the first day of the real logs. */
#define FIRST_DAY_S 1541030400LL

/* ---------------------------------------------------------------- PRNG */

struct rng {
        uint64_t s;
};

/* splitmix64 (Steele, Lea, Flood): tiny, fast, and good enough for data. */
static uint64_t rng_next(struct rng *r)
{
        uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
}

/* An independent stream per part, so each part depends on the seed only. */
static struct rng rng_stream(uint64_t seed, uint64_t part)
{
        struct rng r = { seed };
        r.s = rng_next(&r) ^ (part * 0xd1b54a32d192ed03ULL);
        return r;
}

static uint64_t rng_below(struct rng *r, uint64_t n)
{
        return n ? rng_next(r) % n : 0;
}

static double rng_unit(struct rng *r)
{
        return (double)(rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

static bool rng_chance(struct rng *r, double p)
{
        return rng_unit(r) < p;
}

/* An index in [0, n): uniform most of the time, else with small indices
 * much more likely (heavy users, hits). */
static uint64_t rng_skewed(struct rng *r, uint64_t n)
{
        if (rng_chance(r, 0.7))
                return rng_below(r, n);
        double u = rng_unit(r);
        uint64_t i = (uint64_t)((double)n * u * u);
        return i < n ? i : n - 1;
}

/* 1 + a geometric count with the given mean, capped. */
static unsigned rng_geometric(struct rng *r, double mean, unsigned cap)
{
        double p = 1.0 - 1.0 / mean;
        unsigned n = 1;
        while (n < cap && rng_chance(r, p))
                n++;
        return n;
}

static const char *rng_pick(struct rng *r, const char *const *list, size_t n)
{
        return list[rng_below(r, n)];
}

#define PICK(r, list) rng_pick((r), (list), sizeof(list) / sizeof((list)[0]))

/* ---------------------------------------------------------------- output */

struct out {
        int fd;
        int err;          /* first errno of this file, 0 if none */
        size_t len;       /* bytes in buf */
        uint64_t written; /* bytes of this file */
        char path[4096];
        char buf[OUT_BUFSZ];
};

static void out_flush(struct out *o)
{
        size_t off = 0;
        while (off < o->len && !o->err) {
                ssize_t n = write(o->fd, o->buf + off, o->len - off);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        o->err = errno;
                        break;
                }
                off += (size_t)n;
        }
        o->len = 0;
}

static void out_write(struct out *o, const char *p, size_t n)
{
        o->written += n;
        while (n > 0) {
                size_t room = OUT_BUFSZ - o->len;
                size_t k = n < room ? n : room;
                memcpy(o->buf + o->len, p, k);
                o->len += k;
                p += k;
                n -= k;
                if (o->len == OUT_BUFSZ)
                        out_flush(o);
        }
}

static void out_puts(struct out *o, const char *s)
{
        out_write(o, s, strlen(s));
}

static void out_putc(struct out *o, char c)
{
        out_write(o, &c, 1);
}

static void out_u64(struct out *o, uint64_t v)
{
        char tmp[24];
        size_t i = sizeof(tmp);
        do {
                tmp[--i] = (char)('0' + v % 10);
                v /= 10;
        } while (v);
        out_write(o, tmp + i, sizeof(tmp) - i);
}

/* A decimal with 5 fraction digits from v in units of 1e-5; with trim,
 * trailing zeros go as Python's repr drops them (one digit stays). */
static void out_fixed5(struct out *o, int64_t v, bool trim)
{
        uint64_t a = v < 0 ? (uint64_t)(-v) : (uint64_t)v;
        char frac[6];
        int n = 5;
        if (v < 0)
                out_putc(o, '-');
        out_u64(o, a / 100000);
        out_putc(o, '.');
        uint64_t f = a % 100000;
        for (int i = 4; i >= 0; i--) {
                frac[i] = (char)('0' + f % 10);
                f /= 10;
        }
        while (trim && n > 1 && frac[n - 1] == '0')
                n--;
        out_write(o, frac, (size_t)n);
}

enum {
        ESC_SLASH = 1,    /* "/" as "\/", as the logs have it */
        ESC_MOJIBAKE = 2, /* UTF-8 encoded twice through Latin-1, as the logs have it */
};

static void out_u_escape(struct out *o, unsigned cp)
{
        static const char hex[] = "0123456789abcdef";
        char e[6] = { '\\', 'u', hex[(cp >> 12) & 15], hex[(cp >> 8) & 15], hex[(cp >> 4) & 15],
                      hex[cp & 15] };
        out_write(o, e, sizeof(e));
}

/* Decodes one UTF-8 sequence at s (our own strings: valid by construction);
 * returns its length and stores the code point. */
static size_t utf8_decode(const unsigned char *s, unsigned *cp)
{
        if (s[0] < 0xe0) {
                *cp = ((s[0] & 0x1fU) << 6) | (s[1] & 0x3fU);
                return 2;
        }
        if (s[0] < 0xf0) {
                *cp = ((s[0] & 0x0fU) << 12) | ((s[1] & 0x3fU) << 6) | (s[2] & 0x3fU);
                return 3;
        }
        *cp = ((s[0] & 0x07U) << 18) | ((s[1] & 0x3fU) << 12) | ((s[2] & 0x3fU) << 6) |
              (s[3] & 0x3fU);
        return 4;
}

/* A JSON string in ASCII only: non-ASCII as \uXXXX (lowercase, surrogate
 * pairs above the BMP), like json.dumps with ensure_ascii. */
static void out_json_str(struct out *o, const char *str, unsigned flags)
{
        const unsigned char *s = (const unsigned char *)str;
        out_putc(o, '"');
        while (*s) {
                const unsigned char *run = s;
                while (*s >= 0x20 && *s < 0x80 && *s != '"' && *s != '\\' &&
                       !(*s == '/' && (flags & ESC_SLASH)))
                        s++;
                out_write(o, (const char *)run, (size_t)(s - run));
                if (!*s)
                        break;
                if (*s == '"' || *s == '\\' || *s == '/') {
                        char e[2] = { '\\', (char)*s };
                        out_write(o, e, 2);
                        s++;
                } else if (*s < 0x20) {
                        out_u_escape(o, *s);
                        s++;
                } else if (flags & ESC_MOJIBAKE) {
                        /* Each byte read as Latin-1 and encoded again. */
                        out_u_escape(o, 0xc0U | (*s >> 6));
                        out_u_escape(o, 0x80U | (*s & 0x3fU));
                        s++;
                } else {
                        unsigned cp;
                        s += utf8_decode(s, &cp);
                        if (cp >= 0x10000) {
                                cp -= 0x10000;
                                out_u_escape(o, 0xd800U | (cp >> 10));
                                out_u_escape(o, 0xdc00U | (cp & 0x3ffU));
                        } else {
                                out_u_escape(o, cp);
                        }
                }
        }
        out_putc(o, '"');
}

static int out_open(struct out *o, const char *path)
{
        size_t n = strlen(path);
        if (n >= sizeof(o->path))
                return -ENAMETOOLONG;
        memcpy(o->path, path, n + 1);
        o->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (o->fd < 0)
                return -errno;
        o->err = 0;
        o->len = 0;
        o->written = 0;
        return 0;
}

/* Flushes and closes; -errno of the first failure, reported by the caller. */
static int out_close(struct out *o)
{
        out_flush(o);
        if (close(o->fd) < 0 && !o->err)
                o->err = errno;
        o->fd = -1;
        return -o->err;
}

/* mkdir -p; every component made 0755. */
static int mkdir_p(const char *path)
{
        char tmp[4096];
        size_t n = strlen(path);
        if (n >= sizeof(tmp))
                return -ENAMETOOLONG;
        memcpy(tmp, path, n + 1);
        for (size_t i = 1; i <= n; i++) {
                if (tmp[i] != '/' && tmp[i] != '\0')
                        continue;
                char c = tmp[i];
                tmp[i] = '\0';
                if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
                        return -errno;
                tmp[i] = c;
        }
        return 0;
}

/* ---------------------------------------------------------------- strings */

/* All generated text lives in one arena, referred to by offset. */
struct arena {
        char *p;
        size_t len, cap;
};

static size_t arena_add(struct arena *a, const char *s)
{
        size_t n = strlen(s) + 1;
        if (a->len + n > a->cap) {
                size_t cap = a->cap ? a->cap * 2 : 1U << 16;
                while (cap < a->len + n)
                        cap *= 2;
                char *p = realloc(a->p, cap);
                if (!p) {
                        fputs("etld-gen: out of memory\n", stderr);
                        exit(1);
                }
                a->p = p;
                a->cap = cap;
        }
        memcpy(a->p + a->len, s, n);
        a->len += n;
        return a->len - n;
}

/* A bounded string builder for one name or title. */
struct sb {
        size_t len;
        char s[256];
};

static void sb_add(struct sb *b, const char *s)
{
        size_t n = strlen(s);
        if (b->len + n >= sizeof(b->s))
                n = sizeof(b->s) - 1 - b->len;
        memcpy(b->s + b->len, s, n);
        b->len += n;
        b->s[b->len] = '\0';
}

static void *xcalloc(size_t n, size_t size)
{
        void *p = calloc(n ? n : 1, size);
        if (!p) {
                fputs("etld-gen: out of memory\n", stderr);
                exit(1);
        }
        return p;
}

static const char *const words[] = {
        "Love",    "Night",    "Heart",   "Fire",     "Dream",    "Rain",     "City",
        "Blue",    "Gold",     "Summer",  "Shadow",   "River",    "Dance",    "Song",
        "Road",    "Light",    "Time",    "Girl",     "Boy",      "World",    "Star",
        "Moon",    "Sun",      "Angel",   "Ghost",    "Wild",     "Sweet",    "Broken",
        "Lost",    "Young",    "Electric", "Silent",  "Midnight", "Crazy",    "Little",
        "Lonely",  "Golden",   "Velvet",  "Paper",    "Stone",    "Sugar",    "Honey",
        "Thunder", "Ocean",    "Highway", "Radio",    "Window",   "Mirror",   "Garden",
        "Echo",    "Winter",   "Holiday", "Memory",   "Promise",  "Secret",   "Fever",
        "Paradise", "Tomorrow", "Yesterday", "Forever", "Bones",  "Glass",    "Satellite",
        "Kingdom", "Diamond",  "Storm",   "Morning",  "Sky",      "Machine",  "Rose",
};
/* Words of the tracks that have no song file: other words, so that their
 * titles do not fall on a song file's title by chance. */
static const char *const other_words[] = {
        "Sorrow",  "Candle",   "Harbor",  "Lantern",  "Meadow",   "Carnival", "Compass",
        "Feather", "Jungle",   "Marble",  "Orchard",  "Pilgrim",  "Quarry",   "Saddle",
        "Tambourine", "Umbrella", "Vintage", "Whistle", "Anchor",  "Blossom",  "Cathedral",
        "Desert",  "Emerald",  "Falcon",  "Granite",  "Horizon",  "Island",   "Jasmine",
        "Lullaby", "Monsoon",  "Nomad",   "Opal",     "Prairie",  "Riddle",   "Scarlet",
        "Tundra",  "Voyage",   "Wander",  "Zephyr",   "Harvest",  "Cinnamon", "Porcelain",
        "Rebel",   "Sirens",   "Tide",    "Circus",   "Neon",     "Crimson",  "Skyline",
        "Avalanche", "Bonfire", "Cowboy", "Dynamite", "Firefly",  "Gospel",   "Hurricane",
};
static const char *const joiners[] = { "of", "in", "the", "and", "for", "on", "to", "my",
                                       "your", "with", "Without", "Under" };
static const char *const generic_titles[] = { "Intro", "Outro", "Interlude", "Untitled",
                                              "Home", "Hold On", "Stay", "Runaway" };
static const char *const suffixes[] = { " (Album Version)", " (LP Version)", " (Live)",
                                        " (Remix)", " (Radio Edit)" };
/* UTF-8 words: written as \u escapes in every file. */
static const char *const accented[] = {
        "Santaf\xc3\xa8",      "D\xc3\xb3nde",         "Canci\xc3\xb3n",
        "Caf\xc3\xa9",         "Ni\xc3\xb1o",          "\xc3\x9c" "ber",
        "Se\xc3\xb1or",        "D\xc3\xa9j\xc3\xa0",   "Fr\xc3\xa4ulein",
        "Stra\xc3\x9f" "e",    "\xc2\xbfQui\xc3\xa9n?", "Cora\xc3\xa7\xc3\xa3o",
};
static const char *const accented_artists[] = {
        "Bj\xc3\xb6rk",          "Mot\xc3\xb6rhead",         "Sigur R\xc3\xb3s",
        "Beyonc\xc3\xa9",        "Montserrat Caball\xc3\xa9", "Caf\xc3\xa9 Tacuba",
        "Jos\xc3\xa9 Gonz\xc3\xa1lez", "Ma\xc3\xaft\xc3\xa9 Rosa",
};
/* Quotes and backslashes, escaped in every file. */
static const char *const awkward[] = {
        "\"Heroes\"", "Say \"Yes\"", "Back\\Slash", "AC\\DC Tribute", "Don't \"Stop\"",
        "C:\\Music\\Track",
};
static const char *const first_f[] = { "Anabelle", "Aleena", "Kaylee", "Lily",    "Chloe",
                                       "Tegan",    "Jacqueline", "Layla", "Sara", "Rylan",
                                       "Mia",      "Ava",      "Jordyn", "Kate",  "Stefany" };
static const char *const first_m[] = { "Walter", "Jacob", "Ryan",  "Jayden", "Noah",
                                       "Kevin",  "Aiden", "Liam",  "Lucas",  "Cienna",
                                       "Sean",   "Tucker", "Wyatt", "Rayden", "Mohammad" };
static const char *const last_names[] = {
        "Frye",    "Simpson", "Kirby",  "Summers", "Koch",   "Cuevas", "Levine", "Smith",
        "Lynch",   "Johnson", "Jones",  "Williams", "Davis", "Griffin", "Bradley", "Garrison",
        "Roberts", "Freeman", "Rogers", "Hogan",   "Graham", "Santiago", "Jackson", "Larson",
};
static const char *const user_locations[] = {
        "San Francisco-Oakland-Hayward, CA",
        "Portland-South Portland, ME",
        "Lansing-East Lansing, MI",
        "Chicago-Naperville-Elgin, IL-IN-WI",
        "Atlanta-Sandy Springs-Roswell, GA",
        "Waterloo-Cedar Falls, IA",
        "Lake Havasu City-Kingman, AZ",
        "San Jose-Sunnyvale-Santa Clara, CA",
        "Philadelphia-Camden-Wilmington, PA-NJ-DE-MD",
        "New York-Newark-Jersey City, NY-NJ-PA",
        "Houston-The Woodlands-Sugar Land, TX",
        "Tampa-St. Petersburg-Clearwater, FL",
        "Birmingham-Hoover, AL",
        "Janesville-Beloit, WI",
        "Red Bluff, CA",
        "Winston-Salem, NC",
};
static const char *const user_agents[] = {
        "\"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_4) AppleWebKit/537.36 (KHTML, like "
        "Gecko) Chrome/36.0.1985.143 Safari/537.36\"",
        "\"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Ubuntu Chromium/36.0.1985.125 Chrome/36.0.1985.125 Safari/537.36\"",
        "\"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_4) AppleWebKit/537.78.2 (KHTML, like "
        "Gecko) Version/7.0.6 Safari/537.78.2\"",
        "Mozilla/5.0 (Windows NT 5.1; rv:31.0) Gecko/20100101 Firefox/31.0",
        "\"Mozilla/5.0 (Windows NT 6.3; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/36.0.1985.143 Safari/537.36\"",
        "\"Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/36.0.1985.125 Safari/537.36\"",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.9; rv:31.0) Gecko/20100101 Firefox/31.0",
        "Mozilla/5.0 (Windows NT 6.1; WOW64; rv:31.0) Gecko/20100101 Firefox/31.0",
        "\"Mozilla/5.0 (iPhone; CPU iPhone OS 7_1_2 like Mac OS X) AppleWebKit/537.51.2 "
        "(KHTML, like Gecko) Version/7.0 Mobile/11D257 Safari/9537.53\"",
};
static const char *const artist_locations[] = {
        "Nashville, TN.",   "California - LA",  "New York, NY",      "London, England",
        "Chicago, IL",      "Detroit, MI",      "Hamburg, Germany",  "Montr\xc3\xa9" "al, Qu\xc3\xa9" "bec",
        "Austin, TX",       "Seattle, WA",      "Kingston, Jamaica", "Paris, France",
        "S\xc3\xa3o Paulo, Brazil", "Dublin, Ireland", "Memphis, TN", "Hollywood",
};

/* A song title; other = a track without a song file, which shares the
 * generic titles only rarely ("Intro" by another artist). */
static void gen_title(struct rng *r, struct sb *b, bool other)
{
        b->len = 0;
        b->s[0] = '\0';
        if (rng_chance(r, other ? 0.004 : 0.06)) {
                sb_add(b, PICK(r, generic_titles));
                return;
        }
        if (rng_chance(r, 0.03))
                sb_add(b, PICK(r, awkward));
        else if (rng_chance(r, 0.06))
                sb_add(b, PICK(r, accented));
        else
                sb_add(b, other ? PICK(r, other_words) : PICK(r, words));
        double u = rng_unit(r);
        if (u < 0.25) {
                /* "Word of Word" */
                sb_add(b, " ");
                sb_add(b, PICK(r, joiners));
                sb_add(b, " ");
                sb_add(b, other ? PICK(r, other_words) : PICK(r, words));
        } else if (u < 0.6 || other) {
                sb_add(b, " ");
                sb_add(b, other ? PICK(r, other_words) : PICK(r, words));
        }
        if (rng_chance(r, 0.1))
                sb_add(b, PICK(r, suffixes));
}

static void gen_person(struct rng *r, struct sb *b)
{
        sb_add(b, rng_chance(r, 0.5) ? PICK(r, first_f) : PICK(r, first_m));
        sb_add(b, " ");
        sb_add(b, PICK(r, last_names));
}

static void gen_artist_name(struct rng *r, struct sb *b)
{
        b->len = 0;
        b->s[0] = '\0';
        double u = rng_unit(r);
        if (u < 0.05) {
                sb_add(b, PICK(r, accented_artists));
        } else if (u < 0.07) {
                sb_add(b, PICK(r, awkward));
        } else if (u < 0.09) {
                /* Several performers joined by ';', like the real TRABBOR128F4286200. */
                unsigned n = 2 + (unsigned)rng_below(r, 5);
                for (unsigned i = 0; i < n; i++) {
                        if (i)
                                sb_add(b, ";");
                        gen_person(r, b);
                }
        } else if (u < 0.35) {
                gen_person(r, b);
        } else if (u < 0.55) {
                sb_add(b, "The ");
                sb_add(b, PICK(r, words));
                sb_add(b, "s");
        } else if (u < 0.6) {
                sb_add(b, "DJ ");
                sb_add(b, PICK(r, words));
        } else {
                sb_add(b, PICK(r, words));
                sb_add(b, " ");
                sb_add(b, PICK(r, words));
        }
}

/* A duration in 1e-5 s, in [29, 600), its last digit never 0 so that every
 * reader prints it back with the same 5 decimals. */
static int64_t gen_duration(struct rng *r)
{
        return (int64_t)(290000 + rng_below(r, 5710000)) * 10 + 1 + (int64_t)rng_below(r, 9);
}

/* 16 uppercase alphanumerics after a 2-letter prefix: `lead` fixed
 * characters, random ones, and 6 that encode index through a bijection of
 * [0, 36^6), so ids never collide. */
static void gen_id(struct rng *r, char out[19], const char *prefix, const char *lead,
                   uint64_t index, uint64_t offset)
{
        static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        const uint64_t space = 2176782336ULL; /* 36^6 */
        size_t nlead = strlen(lead);
        memcpy(out, prefix, 2);
        memcpy(out + 2, lead, nlead);
        for (size_t i = 2 + nlead; i < 12; i++)
                out[i] = alnum[rng_below(r, 36)];
        /* 102947 is prime to 36, so i -> i * 102947 + offset is a bijection. */
        uint64_t v = (index * 102947ULL + offset) % space;
        for (int i = 17; i >= 12; i--) {
                out[i] = alnum[v % 36];
                v /= 36;
        }
        out[18] = '\0';
}

/* ---------------------------------------------------------------- model */

struct artist {
        char id[19];
        bool has_coords;
        int64_t lat, lon; /* 1e-5 degrees */
        size_t name, location;
};

struct song {
        char track[19]; /* TR..., also the file name and its folder letters */
        char id[19];    /* SO... */
        uint32_t artist;
        unsigned year;
        int64_t duration; /* 1e-5 s */
        size_t title;
};

/* A track that is in the logs but not among the song files. */
struct track {
        size_t title, artist;
        int64_t duration;
};

struct user {
        const char *first, *last, *location, *agent;
        char gender;
        uint8_t level0; /* 0 free, 1 paid */
        uint8_t nchg;
        uint8_t chg_level[2];
        int64_t chg_s[2]; /* level changes at these seconds */
        int64_t registration_ms;
};

enum page {
        P_NEXTSONG, P_HOME, P_LOGIN, P_LOGOUT, P_UPGRADE, P_DOWNGRADE, P_SETTINGS,
        P_SAVE_SETTINGS, P_HELP, P_ABOUT, P_ERROR, P_SUBMIT_UPGRADE, P_SUBMIT_DOWNGRADE,
};

static const struct {
        const char *name, *method;
        unsigned status;
} pages[] = {
        [P_NEXTSONG] = { "NextSong", "PUT", 200 },
        [P_HOME] = { "Home", "GET", 200 },
        [P_LOGIN] = { "Login", "PUT", 307 },
        [P_LOGOUT] = { "Logout", "PUT", 307 },
        [P_UPGRADE] = { "Upgrade", "GET", 200 },
        [P_DOWNGRADE] = { "Downgrade", "GET", 200 },
        [P_SETTINGS] = { "Settings", "GET", 200 },
        [P_SAVE_SETTINGS] = { "Save Settings", "PUT", 307 },
        [P_HELP] = { "Help", "GET", 200 },
        [P_ABOUT] = { "About", "GET", 200 },
        [P_ERROR] = { "Error", "GET", 404 },
        [P_SUBMIT_UPGRADE] = { "Submit Upgrade", "PUT", 307 },
        [P_SUBMIT_DOWNGRADE] = { "Submit Downgrade", "PUT", 307 },
};

enum source { SRC_NONE, SRC_MATCH, SRC_TITLE, SRC_CATALOG };

struct event {
        int64_t ts_s;
        uint32_t seq; /* generation order: ties of ts keep it */
        uint32_t user;
        uint32_t session;
        uint32_t item;
        uint32_t song, track;
        uint8_t page;
        uint8_t source;
        uint8_t logged_in;
};

struct opts {
        const char *out;
        uint64_t seed, songs, events, days;
        double match_share;
};

struct gen {
        struct opts o;
        struct arena text;
        struct artist *artists;
        size_t nartists;
        struct song *songs;
        struct track *tracks;
        size_t ntracks;
        struct user *users;
        size_t nusers;
        struct event *ev;
        size_t nev, capev;
        uint32_t seq, session;
        struct rng er; /* the events stream */
        uint64_t files, bytes;
        struct out *out;
};

static void gen_artists_and_songs(struct gen *g)
{
        struct rng r = rng_stream(g->o.seed, 1);
        struct sb b;
        size_t n = g->o.songs;
        g->songs = xcalloc(n, sizeof(*g->songs));
        g->artists = xcalloc(n, sizeof(*g->artists));
        uint64_t off_ar = rng_next(&r), off_so = rng_next(&r), off_tr = rng_next(&r);
        /* About 12 files per folder, like the sample: 71 songs -> A/{A,B}/{A,B,C}. */
        uint64_t folders = n / 12 ? n / 12 : 1;
        uint64_t kx = 1;
        while (kx < 26 && (kx + 1) * (kx + 1) <= folders + kx)
                kx++;
        uint64_t ky = (folders + kx - 1) / kx;
        if (ky > 26)
                ky = 26;
        for (size_t i = 0; i < n; i++) {
                struct song *s = &g->songs[i];
                /* An artist with several songs now and then, same attributes on each. */
                if (g->nartists && rng_chance(&r, 0.12)) {
                        s->artist = (uint32_t)rng_below(&r, g->nartists);
                } else {
                        struct artist *a = &g->artists[g->nartists];
                        gen_id(&r, a->id, "AR", "", g->nartists, off_ar);
                        a->has_coords = !rng_chance(&r, 0.56);
                        a->lat = ((int64_t)rng_below(&r, 1300000) - 600000) * 10 + 1 +
                                 (int64_t)rng_below(&r, 9);
                        a->lon = ((int64_t)rng_below(&r, 3600000) - 1800000) * 10 + 1 +
                                 (int64_t)rng_below(&r, 9);
                        a->location = arena_add(&g->text, rng_chance(&r, 0.4)
                                                                  ? ""
                                                                  : PICK(&r, artist_locations));
                        gen_artist_name(&r, &b);
                        a->name = arena_add(&g->text, b.s);
                        s->artist = (uint32_t)g->nartists++;
                }
                char lead[4] = { 'A', (char)('A' + rng_below(&r, kx)),
                                 (char)('A' + rng_below(&r, ky)), '\0' };
                gen_id(&r, s->track, "TR", lead, i, off_tr);
                gen_id(&r, s->id, "SO", "", i, off_so);
                gen_title(&r, &b, false);
                s->title = arena_add(&g->text, b.s);
                s->duration = gen_duration(&r);
                s->year = rng_chance(&r, 0.6) ? 0 : 1961 + (unsigned)rng_below(&r, 48);
        }
}

/* The catalogue of tracks heard in the logs that are not song files. */
static void gen_tracks(struct gen *g)
{
        struct rng r = rng_stream(g->o.seed, 2);
        struct sb b;
        /* Most plays of the sample are of a track heard once: a catalogue
         * twice the events, a share of plays going to the hits. */
        size_t n = g->o.events < MAX_TRACKS / 2 ? g->o.events * 2 : MAX_TRACKS;
        if (n < 100)
                n = 100;
        size_t nart = n / 3 + 1;
        size_t *art = xcalloc(nart, sizeof(*art));
        for (size_t i = 0; i < nart; i++) {
                gen_artist_name(&r, &b);
                art[i] = arena_add(&g->text, b.s);
        }
        g->tracks = xcalloc(n, sizeof(*g->tracks));
        g->ntracks = n;
        for (size_t i = 0; i < n; i++) {
                gen_title(&r, &b, true);
                g->tracks[i].title = arena_add(&g->text, b.s);
                g->tracks[i].artist = art[rng_skewed(&r, nart)];
                g->tracks[i].duration = gen_duration(&r);
        }
        free(art);
}

static uint8_t level_at(const struct user *u, int64_t ts_s)
{
        uint8_t level = u->level0;
        for (unsigned i = 0; i < u->nchg; i++)
                if (ts_s >= u->chg_s[i])
                        level = u->chg_level[i];
        return level;
}

/* Users, and which of them change level when: the first changer goes
 * paid -> free -> paid, the others free -> paid. */
static size_t gen_users(struct gen *g, uint32_t **ret_changers)
{
        struct rng r = rng_stream(g->o.seed, 3);
        size_t n = (size_t)((g->o.events * 97 + 8055) / 8056);
        if (n < 5)
                n = 5;
        g->users = xcalloc(n, sizeof(*g->users));
        g->nusers = n;
        for (size_t i = 0; i < n; i++) {
                struct user *u = &g->users[i];
                u->gender = rng_chance(&r, 0.5) ? 'F' : 'M';
                u->first = u->gender == 'F' ? PICK(&r, first_f) : PICK(&r, first_m);
                u->last = PICK(&r, last_names);
                u->location = PICK(&r, user_locations);
                u->agent = PICK(&r, user_agents);
                u->level0 = rng_chance(&r, 0.3);
                u->registration_ms =
                        (FIRST_DAY_S - 3600 - (int64_t)rng_below(&r, 120 * DAY_S)) * 1000 + 796;
        }
        size_t nchg = g->o.events >= 400 ? g->o.events / 400 : 0;
        if (nchg > n / 3)
                nchg = n / 3;
        uint32_t *perm = xcalloc(n, sizeof(*perm));
        for (size_t i = 0; i < n; i++)
                perm[i] = (uint32_t)i;
        for (size_t i = 0; i < nchg; i++) {
                size_t j = i + rng_below(&r, n - i);
                uint32_t t = perm[i];
                perm[i] = perm[j];
                perm[j] = t;
                struct user *u = &g->users[perm[i]];
                /* Change times: the first in [2h, 10h) of its day, the second
                 * in [13h, 22h), so that the sessions around each fit the day. */
                uint64_t d1 = rng_below(&r, g->o.days);
                if (i == 0) {
                        uint64_t d2 = g->o.days > 1 ? d1 + rng_below(&r, g->o.days - d1) : d1;
                        if (d2 == d1 && d1 + 1 < g->o.days)
                                d2 = d1 + 1;
                        u->level0 = 1;
                        u->nchg = 2;
                        u->chg_level[0] = 0;
                        u->chg_level[1] = 1;
                        u->chg_s[0] = FIRST_DAY_S + (int64_t)d1 * DAY_S + 7200 +
                                      (int64_t)rng_below(&r, 8 * 3600);
                        u->chg_s[1] = FIRST_DAY_S + (int64_t)d2 * DAY_S + 13 * 3600 +
                                      (int64_t)rng_below(&r, 9 * 3600);
                } else {
                        u->level0 = 0;
                        u->nchg = 1;
                        u->chg_level[0] = 1;
                        u->chg_s[0] = FIRST_DAY_S + (int64_t)d1 * DAY_S + 7200 +
                                      (int64_t)rng_below(&r, 20 * 3600);
                }
        }
        *ret_changers = perm;
        return nchg;
}

/* ---------------------------------------------------------------- events */

struct session {
        uint32_t user, id, item;
        int64_t t, end; /* next event time; the day's end */
        size_t budget;  /* events still allowed today */
};

static bool emit(struct gen *g, struct session *s, enum page p, bool logged_in)
{
        if (s->budget == 0 || s->t >= s->end)
                return false;
        if (g->nev == g->capev) {
                size_t cap = g->capev ? g->capev * 2 : 4096;
                struct event *e = realloc(g->ev, cap * sizeof(*e));
                if (!e) {
                        fputs("etld-gen: out of memory\n", stderr);
                        exit(1);
                }
                g->ev = e;
                g->capev = cap;
        }
        struct event *e = &g->ev[g->nev++];
        memset(e, 0, sizeof(*e));
        e->ts_s = s->t;
        e->seq = g->seq++;
        e->user = s->user;
        e->session = s->id;
        e->item = s->item++;
        e->page = (uint8_t)p;
        e->logged_in = logged_in;
        int64_t step;
        if (p == P_NEXTSONG) {
                struct rng *r = &g->er;
                int64_t dur;
                if (g->o.songs && rng_chance(r, g->o.match_share)) {
                        e->source = SRC_MATCH;
                        e->song = (uint32_t)rng_below(r, g->o.songs);
                        dur = g->songs[e->song].duration;
                } else if (g->o.songs && rng_chance(r, 0.002)) {
                        /* A song file's title, someone else's artist and length. */
                        e->source = SRC_TITLE;
                        e->song = (uint32_t)rng_below(r, g->o.songs);
                        e->track = (uint32_t)rng_skewed(r, g->ntracks);
                        dur = g->tracks[e->track].duration;
                } else {
                        e->source = SRC_CATALOG;
                        e->track = (uint32_t)rng_skewed(r, g->ntracks);
                        dur = g->tracks[e->track].duration;
                }
                step = dur / 100000 + (int64_t)rng_below(r, 3);
        } else {
                /* Pages follow each other fast, often within the same second. */
                step = rng_chance(&g->er, 0.2) ? 0 : 1 + (int64_t)rng_below(&g->er, 40);
        }
        s->t += step;
        s->budget--;
        return true;
}

static enum page pick_page(struct rng *r, uint8_t level)
{
        /* Weights of the logged-in pages of the sample, Login/Logout aside. */
        uint64_t x = rng_below(r, 7640);
        if (x < 6820)
                return P_NEXTSONG;
        if (x < 7455)
                return P_HOME;
        if (x < 7536)
                return level ? P_DOWNGRADE : P_UPGRADE;
        if (x < 7592)
                return P_SETTINGS;
        if (x < 7622)
                return P_HELP;
        if (x < 7636)
                return P_ABOUT;
        return P_ERROR;
}

/* One ordinary session of user (NO_USER: a visitor who never logs in). */
static void gen_session(struct gen *g, struct session *s)
{
        struct rng *r = &g->er;
        if (s->user == NO_USER) {
                emit(g, s, P_HOME, false);
                if (rng_chance(r, 0.3))
                        emit(g, s, rng_chance(r, 0.5) ? P_ABOUT : P_HELP, false);
                return;
        }
        uint8_t level = level_at(&g->users[s->user], s->t);
        if (rng_chance(r, 0.11)) {
                if (rng_chance(r, 0.7))
                        emit(g, s, P_HOME, false);
                if (!emit(g, s, P_LOGIN, false))
                        return;
        }
        unsigned n = rng_geometric(r, 7.0, 140);
        for (unsigned i = 0; i < n; i++) {
                enum page p = pick_page(r, level);
                if (!emit(g, s, p, true))
                        return;
                if (p == P_SETTINGS && rng_chance(r, 0.2) && !emit(g, s, P_SAVE_SETTINGS, true))
                        return;
        }
        if (rng_chance(r, 0.09) && emit(g, s, P_LOGOUT, true) && rng_chance(r, 0.8))
                emit(g, s, P_HOME, false);
}

/* The two sessions around a level change at `at`: one that ends with the
 * submit before it, one after it. */
static void gen_change_sessions(struct gen *g, uint32_t user, int64_t at, uint8_t to,
                                int64_t day_end)
{
        struct session s = { .user = user, .id = ++g->session, .t = at - 32 * 60,
                             .end = at, .budget = 5 };
        for (int i = 0; i < 3; i++)
                emit(g, &s, P_NEXTSONG, true);
        emit(g, &s, to ? P_UPGRADE : P_DOWNGRADE, true);
        emit(g, &s, to ? P_SUBMIT_UPGRADE : P_SUBMIT_DOWNGRADE, true);
        struct session s2 = { .user = user, .id = ++g->session, .t = at + 600,
                              .end = day_end, .budget = 3 };
        for (int i = 0; i < 3; i++)
                emit(g, &s2, P_NEXTSONG, true);
}

static int cmp_event(const void *a, const void *b)
{
        const struct event *x = a, *y = b;
        if (x->ts_s != y->ts_s)
                return x->ts_s < y->ts_s ? -1 : 1;
        return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void write_event(struct out *o, const struct gen *g, const struct event *e)
{
        const struct user *u = e->user == NO_USER ? NULL : &g->users[e->user];
        const struct user *who = e->logged_in ? u : NULL;
        const char *song = NULL, *artist = NULL;
        unsigned song_flags = ESC_SLASH | ESC_MOJIBAKE, artist_flags = song_flags;
        int64_t length = 0;
        switch (e->source) {
        case SRC_MATCH:
                /* Exactly the song file's text, so the join finds it. */
                song = g->text.p + g->songs[e->song].title;
                artist = g->text.p + g->artists[g->songs[e->song].artist].name;
                length = g->songs[e->song].duration;
                song_flags = artist_flags = ESC_SLASH;
                break;
        case SRC_TITLE:
                song = g->text.p + g->songs[e->song].title;
                song_flags = ESC_SLASH;
                artist = g->text.p + g->tracks[e->track].artist;
                length = g->tracks[e->track].duration;
                break;
        case SRC_CATALOG:
                song = g->text.p + g->tracks[e->track].title;
                artist = g->text.p + g->tracks[e->track].artist;
                length = g->tracks[e->track].duration;
                break;
        default:
                break;
        }
        out_puts(o, "{\"artist\":");
        if (artist)
                out_json_str(o, artist, artist_flags);
        else
                out_puts(o, "null");
        out_puts(o, e->logged_in ? ",\"auth\":\"Logged In\",\"firstName\":"
                                 : ",\"auth\":\"Logged Out\",\"firstName\":");
        if (who)
                out_json_str(o, who->first, ESC_SLASH);
        else
                out_puts(o, "null");
        out_puts(o, ",\"gender\":");
        if (who) {
                char gq[3] = { '"', who->gender, '"' };
                out_write(o, gq, 3);
        } else {
                out_puts(o, "null");
        }
        out_puts(o, ",\"itemInSession\":");
        out_u64(o, e->item);
        out_puts(o, ",\"lastName\":");
        if (who)
                out_json_str(o, who->last, ESC_SLASH);
        else
                out_puts(o, "null");
        out_puts(o, ",\"length\":");
        if (song)
                out_fixed5(o, length, false);
        else
                out_puts(o, "null");
        /* Logged-out events keep the level of the session's user. */
        out_puts(o, u && level_at(u, e->ts_s) ? ",\"level\":\"paid\",\"location\":"
                                             : ",\"level\":\"free\",\"location\":");
        if (who)
                out_json_str(o, who->location, ESC_SLASH);
        else
                out_puts(o, "null");
        out_puts(o, ",\"method\":\"");
        out_puts(o, pages[e->page].method);
        out_puts(o, "\",\"page\":\"");
        out_puts(o, pages[e->page].name);
        out_puts(o, "\",\"registration\":");
        if (who) {
                out_u64(o, (uint64_t)who->registration_ms);
                out_puts(o, ".0");
        } else {
                out_puts(o, "null");
        }
        out_puts(o, ",\"sessionId\":");
        out_u64(o, e->session);
        out_puts(o, ",\"song\":");
        if (song)
                out_json_str(o, song, song_flags);
        else
                out_puts(o, "null");
        out_puts(o, ",\"status\":");
        out_u64(o, pages[e->page].status);
        out_puts(o, ",\"ts\":");
        out_u64(o, (uint64_t)e->ts_s * 1000 + 796);
        out_puts(o, ",\"userAgent\":");
        if (who)
                out_json_str(o, who->agent, ESC_SLASH);
        else
                out_puts(o, "null");
        out_puts(o, ",\"userId\":\"");
        if (who)
                out_u64(o, (uint64_t)e->user + 1);
        out_puts(o, "\"}");
}

/* Gregorian date of a day number since 1970-01-01 (Howard Hinnant's
 * civil_from_days), so no gmtime and no time zone. */
static void civil_from_days(int64_t z, int *y, unsigned *m, unsigned *d)
{
        z += 719468;
        int64_t era = (z >= 0 ? z : z - 146096) / 146097;
        unsigned doe = (unsigned)(z - era * 146097);
        unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        int64_t yy = (int64_t)yoe + era * 400;
        unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        unsigned mp = (5 * doy + 2) / 153;
        *d = doy - (153 * mp + 2) / 5 + 1;
        *m = mp < 10 ? mp + 3 : mp - 9;
        *y = (int)(yy + (*m <= 2));
}

static int finish_file(struct gen *g)
{
        int r = out_close(g->out);
        if (r < 0) {
                fprintf(stderr, "etld-gen: %s: %s\n", g->out->path, strerror(-r));
                return r;
        }
        g->files++;
        g->bytes += g->out->written;
        return 0;
}

static int open_file(struct gen *g, const char *path)
{
        int r = out_open(g->out, path);
        if (r < 0)
                fprintf(stderr, "etld-gen: %s: %s\n", path, strerror(-r));
        return r;
}

static int write_days(struct gen *g, const uint32_t *changers, size_t nchanger)
{
        uint64_t days = g->o.days;
        uint64_t *budget = xcalloc(days, sizeof(*budget));
        uint64_t forced = 0;
        for (size_t i = 0; i < nchanger; i++)
                forced += 8 * (uint64_t)g->users[changers[i]].nchg;
        uint64_t rest = g->o.events - forced, wsum = 0;
        for (uint64_t d = 0; d < days; d++) {
                budget[d] = 300 + rng_below(&g->er, 1000);
                wsum += budget[d];
        }
        uint64_t given = 0;
        for (uint64_t d = 0; d < days; d++) {
                budget[d] = rest * budget[d] / wsum;
                given += budget[d];
        }
        for (; given < rest; given++)
                budget[rng_below(&g->er, days)]++;

        int r = 0;
        for (uint64_t d = 0; d < days && r == 0; d++) {
                int64_t start = FIRST_DAY_S + (int64_t)d * DAY_S, end = start + DAY_S;
                g->nev = 0;
                for (size_t i = 0; i < nchanger; i++) {
                        const struct user *u = &g->users[changers[i]];
                        for (unsigned k = 0; k < u->nchg; k++)
                                if (u->chg_s[k] >= start && u->chg_s[k] < end)
                                        gen_change_sessions(g, changers[i], u->chg_s[k],
                                                            u->chg_level[k], end);
                }
                struct session s = { .end = end, .budget = budget[d] };
                while (s.budget > 0) {
                        s.user = rng_chance(&g->er, 0.01)
                                         ? NO_USER
                                         : (uint32_t)rng_skewed(&g->er, g->nusers);
                        s.id = ++g->session;
                        s.item = 0;
                        s.t = start + (int64_t)rng_below(&g->er, DAY_S - 60);
                        gen_session(g, &s);
                }
                if (g->nev > 1) /* a day may have no events, and ev no array yet */
                        qsort(g->ev, g->nev, sizeof(*g->ev), cmp_event);

                int y;
                unsigned m, dd;
                civil_from_days(start / DAY_S, &y, &m, &dd);
                char dir[4096], path[4096];
                int n = snprintf(dir, sizeof(dir), "%s/log_data/%04d/%02u", g->o.out, y, m);
                int n2 = snprintf(path, sizeof(path), "%s/%04d-%02u-%02u-events.json", dir, y, m,
                                  dd);
                if (n < 0 || (size_t)n >= sizeof(dir) || n2 < 0 || (size_t)n2 >= sizeof(path)) {
                        fprintf(stderr, "etld-gen: %s: path too long\n", g->o.out);
                        r = -ENAMETOOLONG;
                        break;
                }
                r = mkdir_p(dir);
                if (r < 0) {
                        fprintf(stderr, "etld-gen: %s: %s\n", dir, strerror(-r));
                        break;
                }
                r = open_file(g, path);
                if (r < 0)
                        break;
                for (size_t i = 0; i < g->nev; i++) {
                        if (i)
                                out_putc(g->out, '\n');
                        write_event(g->out, g, &g->ev[i]);
                }
                r = finish_file(g);
        }
        free(budget);
        return r;
}

static void write_song(struct out *o, const struct gen *g, const struct song *s)
{
        const struct artist *a = &g->artists[s->artist];
        out_puts(o, "{\"num_songs\": 1, \"artist_id\": \"");
        out_puts(o, a->id);
        out_puts(o, "\", \"artist_latitude\": ");
        if (a->has_coords)
                out_fixed5(o, a->lat, true);
        else
                out_puts(o, "null");
        out_puts(o, ", \"artist_longitude\": ");
        if (a->has_coords)
                out_fixed5(o, a->lon, true);
        else
                out_puts(o, "null");
        out_puts(o, ", \"artist_location\": ");
        out_json_str(o, g->text.p + a->location, 0);
        out_puts(o, ", \"artist_name\": ");
        out_json_str(o, g->text.p + a->name, 0);
        out_puts(o, ", \"song_id\": \"");
        out_puts(o, s->id);
        out_puts(o, "\", \"title\": ");
        out_json_str(o, g->text.p + s->title, 0);
        out_puts(o, ", \"duration\": ");
        out_fixed5(o, s->duration, false);
        out_puts(o, ", \"year\": ");
        out_u64(o, s->year);
        out_putc(o, '}');
}

static int write_songs(struct gen *g)
{
        bool made[26][26] = { { false } };
        char path[4096];
        for (size_t i = 0; i < g->o.songs; i++) {
                const struct song *s = &g->songs[i];
                int x = s->track[3] - 'A', y = s->track[4] - 'A';
                int n = snprintf(path, sizeof(path), "%s/song_data/A/%c/%c", g->o.out,
                                 s->track[3], s->track[4]);
                if (n < 0 || (size_t)n + 24 >= sizeof(path)) {
                        fprintf(stderr, "etld-gen: %s: path too long\n", g->o.out);
                        return -ENAMETOOLONG;
                }
                if (!made[x][y]) {
                        int r = mkdir_p(path);
                        if (r < 0) {
                                fprintf(stderr, "etld-gen: %s: %s\n", path, strerror(-r));
                                return r;
                        }
                        made[x][y] = true;
                }
                snprintf(path + n, sizeof(path) - (size_t)n, "/%s.json", s->track);
                int r = open_file(g, path);
                if (r < 0)
                        return r;
                write_song(g->out, g, s);
                r = finish_file(g);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int write_jsonpaths(struct gen *g)
{
        static const char *const keys[] = {
                "artist",   "auth",         "firstName", "gender",  "itemInSession",
                "lastName", "length",       "level",     "location", "method",
                "page",     "registration", "sessionId", "song",    "status",
                "ts",       "userAgent",    "userId",
        };
        char path[4096];
        int n = snprintf(path, sizeof(path), "%s/log_json_path.json", g->o.out);
        if (n < 0 || (size_t)n >= sizeof(path)) {
                fprintf(stderr, "etld-gen: %s: path too long\n", g->o.out);
                return -ENAMETOOLONG;
        }
        int r = open_file(g, path);
        if (r < 0)
                return r;
        out_puts(g->out, "{\n\"jsonpaths\": [\n");
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
                out_puts(g->out, "\"$['");
                out_puts(g->out, keys[i]);
                out_puts(g->out, i + 1 < sizeof(keys) / sizeof(keys[0]) ? "']\",\n" : "']\"\n");
        }
        out_puts(g->out, "]\n}");
        return finish_file(g);
}

/* ---------------------------------------------------------------- options */

static void usage(FILE *f)
{
        fputs("Usage: etld-gen --out DIR [OPTION]...\n"
              "Write a Sparkify-shaped data set, laid out like s3://udacity-dend, into DIR:\n"
              "song_data/A/X/Y/TR*.json, log_data/YYYY/MM/YYYY-MM-DD-events.json (days from\n"
              "2018-11-01) and log_json_path.json.  The same seed and sizes give the same\n"
              "bytes.  DIR must not hold song_data or log_data already.\n"
              "\n"
              "  -o, --out DIR          where to write (created if missing)\n"
              "  -s, --seed N           seed of the generator (default 1)\n"
              "      --songs N          song files (default 71)\n"
              "      --events N         log events in all (default 8056)\n"
              "      --days N           log files, one a day (default 30)\n"
              "      --match-share F    share of NextSong events naming a generated song\n"
              "                         exactly, 0..1 (default 0.2)\n"
              "  -h, --help             show this help\n",
              f);
}

static int parse_u64(const char *opt, const char *s, uint64_t max, uint64_t *ret)
{
        char *end = NULL;
        unsigned long long v = 0;
        bool ok = s[0] >= '0' && s[0] <= '9';
        if (ok) {
                errno = 0;
                v = strtoull(s, &end, 10);
                ok = errno == 0 && *end == '\0' && v <= max;
        }
        if (!ok) {
                fprintf(stderr, "etld-gen: %s: '%s' is not an integer from 0 to %" PRIu64 "\n",
                        opt, s, max);
                return -EINVAL;
        }
        *ret = v;
        return 0;
}

static int parse_share(const char *opt, const char *s, double *ret)
{
        char *end;
        errno = 0;
        double v = strtod(s, &end);
        if (end == s || *end || errno || !(v >= 0.0 && v <= 1.0)) {
                fprintf(stderr, "etld-gen: %s: '%s' is not a number from 0 to 1\n", opt, s);
                return -EINVAL;
        }
        *ret = v;
        return 0;
}

/* 0 to run, 1 for --help, -EINVAL on a bad command line (already reported). */
static int parse_args(int argc, char **argv, struct opts *o)
{
        enum { OPT_SONGS = 256, OPT_EVENTS, OPT_DAYS, OPT_MATCH };
        static const struct option longopts[] = {
                { "out", required_argument, NULL, 'o' },
                { "seed", required_argument, NULL, 's' },
                { "songs", required_argument, NULL, OPT_SONGS },
                { "events", required_argument, NULL, OPT_EVENTS },
                { "days", required_argument, NULL, OPT_DAYS },
                { "match-share", required_argument, NULL, OPT_MATCH },
                { "help", no_argument, NULL, 'h' },
                { NULL, 0, NULL, 0 },
        };
        *o = (struct opts){ .seed = 1, .songs = 71, .events = 8056, .days = 30,
                            .match_share = 0.2 };
        int c, r = 0;
        while (r == 0 && (c = getopt_long(argc, argv, "o:s:h", longopts, NULL)) != -1) {
                switch (c) {
                case 'o':
                        o->out = optarg;
                        break;
                case 's':
                        r = parse_u64("--seed", optarg, UINT64_MAX, &o->seed);
                        break;
                case OPT_SONGS:
                        r = parse_u64("--songs", optarg, MAX_SONGS, &o->songs);
                        break;
                case OPT_EVENTS:
                        r = parse_u64("--events", optarg, MAX_EVENTS, &o->events);
                        break;
                case OPT_DAYS:
                        r = parse_u64("--days", optarg, MAX_DAYS, &o->days);
                        if (r == 0 && o->days == 0) {
                                fputs("etld-gen: --days: must be at least 1\n", stderr);
                                r = -EINVAL;
                        }
                        break;
                case OPT_MATCH:
                        r = parse_share("--match-share", optarg, &o->match_share);
                        break;
                case 'h':
                        usage(stdout);
                        return 1;
                default:
                        /* getopt_long has named the option already. */
                        r = -EINVAL;
                        break;
                }
        }
        if (r == 0 && optind < argc) {
                fprintf(stderr, "etld-gen: unexpected argument '%s'\n", argv[optind]);
                r = -EINVAL;
        }
        if (r == 0 && (!o->out || !o->out[0])) {
                fputs("etld-gen: --out DIR is required\n", stderr);
                r = -EINVAL;
        }
        if (r < 0)
                fputs("Try 'etld-gen --help'.\n", stderr);
        return r;
}

/* Refuses to mix two data sets: files of a larger earlier run would stay. */
static int check_fresh(const char *dir)
{
        static const char *const parts[] = { "song_data", "log_data" };
        for (size_t i = 0; i < 2; i++) {
                char path[4096];
                struct stat st;
                int n = snprintf(path, sizeof(path), "%s/%s", dir, parts[i]);
                if (n < 0 || (size_t)n >= sizeof(path)) {
                        fprintf(stderr, "etld-gen: %s: path too long\n", dir);
                        return -ENAMETOOLONG;
                }
                if (lstat(path, &st) == 0) {
                        fprintf(stderr,
                                "etld-gen: %s already exists; remove it or choose another --out\n",
                                path);
                        return -EEXIST;
                }
        }
        return 0;
}

int main(int argc, char **argv)
{
        struct gen g = { 0 };
        int r = parse_args(argc, argv, &g.o);
        if (r != 0)
                return r > 0 ? 0 : 2;
        r = check_fresh(g.o.out);
        if (r < 0)
                return 1;
        r = mkdir_p(g.o.out);
        if (r < 0) {
                fprintf(stderr, "etld-gen: %s: %s\n", g.o.out, strerror(-r));
                return 1;
        }
        g.out = xcalloc(1, sizeof(*g.out));
        g.er = rng_stream(g.o.seed, 4);

        gen_artists_and_songs(&g);
        gen_tracks(&g);
        uint32_t *changers;
        size_t nchanger = gen_users(&g, &changers);

        r = write_songs(&g);
        if (r == 0)
                r = write_days(&g, changers, nchanger);
        if (r == 0)
                r = write_jsonpaths(&g);
        if (r == 0)
                printf("etld-gen: %" PRIu64 " files, %" PRIu64 " songs, %" PRIu64
                       " events, %" PRIu64 " bytes in %s\n",
                       g.files, g.o.songs, g.o.events, g.bytes, g.o.out);

        free(changers);
        free(g.ev);
        free(g.users);
        free(g.tracks);
        free(g.songs);
        free(g.artists);
        free(g.text.p);
        free(g.out);
        return r == 0 ? 0 : 1;
}
