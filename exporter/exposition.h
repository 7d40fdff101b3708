// The /metrics text as the renderer makes it and the HTTP server sends it: `stable`, the node and
// device view, the same object until a snapshot changes (so what is derived from it, such as its
// gzip, can be cached by identity), then `fresh`, the exporter's own metrics, made per scrape.
#ifndef DEVSCOPE_EXPORTER_EXPOSITION_H_
#define DEVSCOPE_EXPORTER_EXPOSITION_H_

#include <memory>
#include <string>

namespace devscope {

struct Exposition {
  std::shared_ptr<const std::string> stable;
  std::string fresh;
};

}  // namespace devscope

#endif  // DEVSCOPE_EXPORTER_EXPOSITION_H_
