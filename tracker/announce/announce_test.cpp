#include <gtest/gtest.h>

#include "tracker/announce/announce_request.h"
#include "tracker/announce/announce_response.h"

namespace flotilla::tracker {
namespace {

std::string Escape(const std::string& bytes) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : bytes) {
    out += '%';
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

const std::string kHash(20, '\xab');
const std::string kPeer = "-FL0001-abcdefghijkl";

std::string Query(const std::string& extra = "") {
  return "info_hash=" + Escape(kHash) + "&peer_id=" + Escape(kPeer) +
         "&port=6881&uploaded=1&downloaded=2&left=3&compact=1" + extra;
}

TEST(ParseQuery, DecodesAndRefusesRepeatsAndBadEscapes) {
  auto q = ParseQuery("a=%41%62&b=&c=x+y");
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->at("a"), "Ab");
  EXPECT_EQ(q->at("b"), "");
  EXPECT_EQ(q->at("c"), "x+y");
  EXPECT_FALSE(ParseQuery("a=1&a=2").ok());
  EXPECT_FALSE(ParseQuery("a=%4").ok());
  EXPECT_FALSE(ParseQuery("a=%zz").ok());
  EXPECT_FALSE(ParseQuery("=1").ok());
}

TEST(ParseAnnounce, AcceptsAWellFormedAnnounce) {
  auto r = ParseAnnounce(
      ParseQuery(Query("&event=started&numwant=999&site=shop-1&ip=10.0.0.7")).value());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(std::string(r->info_hash.begin(), r->info_hash.end()), kHash);
  EXPECT_EQ(r->peer_id, kPeer);
  EXPECT_EQ(r->port, 6881);
  EXPECT_EQ(*r->left, 3u);
  EXPECT_EQ(r->event, AnnounceEvent::kStarted);
  EXPECT_EQ(r->numwant, kMaxNumwant);
  EXPECT_EQ(r->site, "shop-1");
  EXPECT_EQ(r->lan_ip->ToString(), "10.0.0.7");
}

TEST(ParseAnnounce, RefusesBogusParameters) {
  auto bad = [](const std::string& q) { return !ParseAnnounce(ParseQuery(q).value()).ok(); };
  EXPECT_TRUE(bad("peer_id=" + Escape(kPeer) + "&port=1"));                // no info_hash
  EXPECT_TRUE(bad("info_hash=abc&peer_id=" + Escape(kPeer) + "&port=1"));  // short hash
  EXPECT_TRUE(bad(Query("&event=exploded")));
  EXPECT_TRUE(bad(Query("&site=../../etc")));
  EXPECT_TRUE(bad(Query("&ip=not-an-ip")));
  EXPECT_TRUE(bad(Query("&numwant=-1")));
  EXPECT_TRUE(bad("info_hash=" + Escape(kHash) + "&peer_id=" + Escape(kPeer) + "&port=70000"));
  EXPECT_TRUE(bad("info_hash=" + Escape(kHash) + "&peer_id=" + Escape(kPeer) + "&port=0"));
  EXPECT_TRUE(bad("info_hash=" + Escape(kHash) + "&peer_id=short&port=1"));
  EXPECT_TRUE(
      bad("info_hash=" + Escape(kHash) + "&peer_id=" + Escape(kPeer) + "&port=1&compact=2"));
}

TEST(ParseAnnounce, ProxiedIsAFlagThatDefaultsToOff) {
  EXPECT_FALSE(ParseAnnounce(ParseQuery(Query()).value())->proxied);
  EXPECT_TRUE(ParseAnnounce(ParseQuery(Query("&proxied=1")).value())->proxied);
  EXPECT_FALSE(ParseAnnounce(ParseQuery(Query("&proxied=0")).value())->proxied);
  EXPECT_FALSE(ParseAnnounce(ParseQuery(Query("&proxied=yes")).value()).ok());
}

TEST(AnnounceResponse, CompactPeersAreSixBytesEach) {
  AnnounceResult result;
  result.complete = 1;
  result.incomplete = 2;
  result.peers.push_back({IpAddress::Parse("10.1.2.3").value(), 0x1AE1, kPeer});
  result.peers.push_back({IpAddress::Parse("::1").value(), 80, kPeer});
  std::string text = EncodeAnnounceResponse(result, true, AnnounceTiming{900, 30});
  std::string v4 = std::string("\x0a\x01\x02\x03\x1a\xe1", 6);
  std::string v6 = std::string(15, '\0') + "\x01" + std::string("\x00\x50", 2);
  EXPECT_EQ(text, "d8:completei1e10:incompletei2e8:intervali900e12:min intervali30e5:peers6:" + v4 +
                      "6:peers618:" + v6 + "e");
  EXPECT_EQ(EncodeAnnounceFailure("no"), "d14:failure reason2:noe");
}

// BEP 3: every dictionary, nested ones included, has its keys in sorted order.
TEST(AnnounceResponse, NonCompactPeersAreSortedDictionaries) {
  AnnounceResult result;
  result.complete = 0;
  result.incomplete = -3;
  result.peers.push_back({IpAddress::Parse("10.1.2.3").value(), 6881, kPeer});
  EXPECT_EQ(EncodeAnnounceResponse(result, false, AnnounceTiming{900, 30}),
            "d8:completei0e10:incompletei-3e8:intervali900e12:min intervali30e5:peersl"
            "d2:ip8:10.1.2.37:peer id20:" +
                kPeer + "4:porti6881eeee");
}

}  // namespace
}  // namespace flotilla::tracker
