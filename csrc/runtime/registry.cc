#include <algorithm>
#include <unordered_map>

#include "sliver/kernel.h"

namespace sliver {

namespace {
// Several factories may share a key (e.g. a fast one that declines unusual
// attributes, then a general one); they are tried by priority, higher first,
// and in registration order within a priority (kept sorted on insertion, so the
// order of static initialisers across files does not matter between priorities).
struct Entry {
  int priority;
  KernelFactory factory;
};

std::unordered_map<std::string, std::vector<Entry>>& table() {
  static std::unordered_map<std::string, std::vector<Entry>> t;
  return t;
}

template <class T, class F>
T get_as(const Attrs& a, const std::string& name, T dflt, F convert) {
  auto it = a.values.find(name);
  if (it == a.values.end()) return dflt;
  return convert(it->second, name);
}
}  // namespace

void register_kernel(const std::string& key, KernelFactory factory, int priority) {
  std::vector<Entry>& v = table()[key];
  auto pos =
      std::find_if(v.begin(), v.end(), [&](const Entry& e) { return e.priority < priority; });
  v.insert(pos, Entry{priority, factory});
}

std::unique_ptr<Kernel> create_kernel(const KernelInit& init) {
  std::string key = (init.domain.empty() || init.domain == "ai.onnx")
                        ? init.op_type
                        : init.domain + ":" + init.op_type;
  auto it = table().find(key);
  if (it == table().end()) return nullptr;
  for (const Entry& e : it->second) {
    if (auto k = e.factory(init)) return k;
  }
  return nullptr;
}

std::vector<std::string> registered_kernels() {
  std::vector<std::string> keys;
  for (auto& kv : table()) keys.push_back(kv.first);
  std::sort(keys.begin(), keys.end());
  return keys;
}

int64_t Attrs::get_int(const std::string& name, int64_t dflt) const {
  return get_as<int64_t>(*this, name, dflt, [](const AttrValue& v, const std::string& n) {
    if (auto p = std::get_if<int64_t>(&v)) return *p;
    fail("attribute '", n, "' is not an int");
  });
}

double Attrs::get_float(const std::string& name, double dflt) const {
  return get_as<double>(*this, name, dflt, [](const AttrValue& v, const std::string& n) {
    if (auto p = std::get_if<double>(&v)) return *p;
    if (auto p = std::get_if<int64_t>(&v)) return static_cast<double>(*p);
    fail("attribute '", n, "' is not a float");
  });
}

std::string Attrs::get_string(const std::string& name, const std::string& dflt) const {
  return get_as<std::string>(*this, name, dflt, [](const AttrValue& v, const std::string& n) {
    if (auto p = std::get_if<std::string>(&v)) return *p;
    fail("attribute '", n, "' is not a string");
  });
}

std::vector<int64_t> Attrs::get_ints(const std::string& name, std::vector<int64_t> dflt) const {
  return get_as<std::vector<int64_t>>(*this, name, dflt,
                                      [](const AttrValue& v, const std::string& n) {
                                        if (auto p = std::get_if<std::vector<int64_t>>(&v))
                                          return *p;
                                        fail("attribute '", n, "' is not a list of ints");
                                      });
}

std::vector<double> Attrs::get_floats(const std::string& name, std::vector<double> dflt) const {
  return get_as<std::vector<double>>(*this, name, dflt,
                                     [](const AttrValue& v, const std::string& n) {
                                       if (auto p = std::get_if<std::vector<double>>(&v))
                                         return *p;
                                       fail("attribute '", n, "' is not a list of floats");
                                     });
}

const Tensor* Attrs::get_tensor(const std::string& name) const {
  auto it = values.find(name);
  if (it == values.end()) return nullptr;
  return std::get_if<Tensor>(&it->second);
}

}  // namespace sliver
