// Errors that cross into Python as sliver exceptions; never abort.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace sliver {

// Raised for invalid models, feeds or attributes; becomes sliver.SliverError.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {
inline void append(std::ostringstream&) {}
template <class T, class... R>
void append(std::ostringstream& os, const T& v, const R&... rest) {
  os << v;
  append(os, rest...);
}
}  // namespace detail

template <class... A>
[[noreturn]] void fail(const A&... parts) {
  std::ostringstream os;
  detail::append(os, parts...);
  throw Error(os.str());
}

}  // namespace sliver

// A check that stays in release builds: bad input is a Python exception.
#define SLIVER_CHECK(cond, ...)                                  \
  do {                                                           \
    if (!(cond)) ::sliver::fail("check failed: " #cond ": ", __VA_ARGS__); \
  } while (0)
