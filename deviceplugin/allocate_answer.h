// What Allocate answers for one container: the device specs, CDI device names, environment,
// mounts and annotations of the devices it was given, merged (kubelet-api.md section 2).
#ifndef DEVSCOPE_DEVICEPLUGIN_ALLOCATE_ANSWER_H_
#define DEVSCOPE_DEVICEPLUGIN_ALLOCATE_ANSWER_H_

#include <vector>

#include "deviceplugin/plugin_options.h"
#include "deviceplugin/resource_devices.h"
#include "deviceplugin/v1beta1/api.pb.h"

namespace devscope {

// Fills `out` from `devices` (in the kubelet's order): each device's device specs, its CDI name,
// or both (`with`), device specs when no CDI spec names it; annotations and the CDI devices its
// allocate file names always. A device node or mount is given once per container path, a CDI name
// once; an environment variable or annotation several devices set to different values gets them
// joined with ',' in device order.
void FillContainerAnswer(const std::vector<const PluginDevice*>& devices, AllocateWith with,
                         v1beta1::ContainerAllocateResponse& out);

}  // namespace devscope

#endif  // DEVSCOPE_DEVICEPLUGIN_ALLOCATE_ANSWER_H_
