/*
 * The subset of the SNPE 2.x C API that a framebus worker uses, declared with the SDK's own
 * names, signatures and enum values (DlContainer.h, SNPEBuilder.h, SNPE.h, SNPEUtil.h,
 * IUserBuffer.h, UserBufferMap.h, UserMemoryMap.h, RuntimeList.h, TensorShape.h, StringList.h,
 * DlVersion.h, DlEnums.h, DlError.h of the SDK's include/SNPE directory), so that code written
 * against it builds unchanged against the real SDK.
 *
 * This file is framebus's own declaration of that interface; the implementation behind it in
 * this crate is a stub (stub/snpe_stub.c). Point the crate at a real SDK with SNPE_ROOT (see
 * the crate's README) and the real headers and libSNPE are used instead.
 */
#ifndef FRAMEBUS_SNPE_C_API_H
#define FRAMEBUS_SNPE_C_API_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef SNPE_API
#define SNPE_API
#endif

/* ---- handles: opaque, as in the SDK ---------------------------------------------------- */
typedef void* Snpe_DlContainer_Handle_t;
typedef void* Snpe_SNPEBuilder_Handle_t;
typedef void* Snpe_SNPE_Handle_t;
typedef void* Snpe_IUserBuffer_Handle_t;
typedef void* Snpe_UserBufferEncoding_Handle_t;
typedef void* Snpe_UserBufferMap_Handle_t;
typedef void* Snpe_RuntimeList_Handle_t;
typedef void* Snpe_TensorShape_Handle_t;
typedef void* Snpe_StringList_Handle_t;
typedef void* Snpe_DlVersion_Handle_t;
typedef void* Snpe_UserMemoryMap_Handle_t;

/* ---- DlEnums.h -------------------------------------------------------------------------- */
typedef enum {
    SNPE_RUNTIME_CPU_FLOAT32 = 0,
    SNPE_RUNTIME_GPU_FLOAT32_16_HYBRID = 1,
    SNPE_RUNTIME_DSP_FIXED8_TF = 2,
    SNPE_RUNTIME_GPU_FLOAT16 = 3,
    SNPE_RUNTIME_AIP_FIXED8_TF = 5,
    SNPE_RUNTIME_CPU = SNPE_RUNTIME_CPU_FLOAT32,
    SNPE_RUNTIME_GPU = SNPE_RUNTIME_GPU_FLOAT32_16_HYBRID,
    SNPE_RUNTIME_DSP = SNPE_RUNTIME_DSP_FIXED8_TF,
    SNPE_RUNTIME_AIP_FIXED_TF = SNPE_RUNTIME_AIP_FIXED8_TF,
    SNPE_RUNTIME_UNSET = -1
} Snpe_Runtime_t;

/* ---- DlError.h (the codes this subset returns, with the SDK's values) ------------------- */
typedef enum {
    SNPE_SUCCESS = 0,
    SNPE_ERRORCODE_CAPI_CREATE_FAILURE = 10,
    SNPE_ERRORCODE_CAPI_HANDLEGEN_FAILURE = 11,
    SNPE_ERRORCODE_CAPI_DELETE_FAILURE = 12,
    SNPE_ERRORCODE_CAPI_BAD_HANDLE = 13,
    SNPE_ERRORCODE_CAPI_BAD_ARGUMENT = 14,
    SNPE_ERRORCODE_CAPI_BAD_ALLOC = 15,
    SNPE_ERRORCODE_CONFIG_MISSING_PARAM = 100,
    SNPE_ERRORCODE_CONFIG_INVALID_PARAM = 101,
    SNPE_ERRORCODE_CONFIG_MISSING_FILE = 102,
    SNPE_ERRORCODE_CONFIG_WRONG_INPUT_NAME = 105,
    SNPE_ERRORCODE_CONFIG_INCORRECT_INPUT_DIMENSIONS = 106,
    SNPE_ERRORCODE_DLSYSTEM_MISSING_BUFFER = 200,
    SNPE_ERRORCODE_DLSYSTEM_SIZE_MISMATCH = 203,
    SNPE_ERRORCODE_DLSYSTEM_NAME_NOT_FOUND = 204,
    SNPE_ERRORCODE_DLSYSTEM_BUFFER_INVALID_PARAM = 241,
    SNPE_ERRORCODE_DLCONTAINER_MODEL_PARSING_FAILED = 300,
    SNPE_ERRORCODE_DLCONTAINER_BAD_CONTAINER = 311,
    SNPE_ERRORCODE_NETWORK_EXECUTION_FAILED = 407,
    SNPE_ERRORCODE_HOST_RUNTIME_TARGET_UNAVAILABLE = 500,
    SNPE_ERRORCODE_UNKNOWN_EXCEPTION = 1210
} Snpe_ErrorCode_t;

SNPE_API void Snpe_ErrorCode_clearLastErrorCode(void);
SNPE_API Snpe_ErrorCode_t Snpe_ErrorCode_getLastErrorCode(void);
SNPE_API const char* Snpe_ErrorCode_GetLastErrorString(void);

/* ---- DlContainer.h ---------------------------------------------------------------------- */
SNPE_API Snpe_DlContainer_Handle_t Snpe_DlContainer_Open(const char* filename);
SNPE_API Snpe_ErrorCode_t Snpe_DlContainer_Delete(Snpe_DlContainer_Handle_t dlContainerHandle);

/* ---- RuntimeList.h ---------------------------------------------------------------------- */
SNPE_API Snpe_RuntimeList_Handle_t Snpe_RuntimeList_Create(void);
SNPE_API Snpe_ErrorCode_t Snpe_RuntimeList_Delete(Snpe_RuntimeList_Handle_t runtimeListHandle);
SNPE_API Snpe_ErrorCode_t Snpe_RuntimeList_Add(Snpe_RuntimeList_Handle_t runtimeListHandle, Snpe_Runtime_t runtime);

/* ---- SNPEBuilder.h ---------------------------------------------------------------------- */
SNPE_API Snpe_SNPEBuilder_Handle_t Snpe_SNPEBuilder_Create(Snpe_DlContainer_Handle_t containerHandle);
SNPE_API Snpe_ErrorCode_t Snpe_SNPEBuilder_Delete(Snpe_SNPEBuilder_Handle_t snpeBuilderHandle);
SNPE_API Snpe_ErrorCode_t Snpe_SNPEBuilder_SetRuntimeProcessorOrder(Snpe_SNPEBuilder_Handle_t snpeBuilderHandle,
                                                                   Snpe_RuntimeList_Handle_t runtimeListHandle);
SNPE_API Snpe_ErrorCode_t Snpe_SNPEBuilder_SetUseUserSuppliedBuffers(Snpe_SNPEBuilder_Handle_t snpeBuilderHandle,
                                                                    int bufferMode);
SNPE_API Snpe_SNPE_Handle_t Snpe_SNPEBuilder_Build(Snpe_SNPEBuilder_Handle_t snpeBuilderHandle);

/* ---- SNPE.h ----------------------------------------------------------------------------- */
SNPE_API Snpe_ErrorCode_t Snpe_SNPE_Delete(Snpe_SNPE_Handle_t snpeHandle);
SNPE_API Snpe_StringList_Handle_t Snpe_SNPE_GetInputTensorNames(Snpe_SNPE_Handle_t snpeHandle);
SNPE_API Snpe_StringList_Handle_t Snpe_SNPE_GetOutputTensorNames(Snpe_SNPE_Handle_t snpeHandle);
SNPE_API Snpe_ErrorCode_t Snpe_SNPE_ExecuteUserBuffers(Snpe_SNPE_Handle_t snpeHandle,
                                                      Snpe_UserBufferMap_Handle_t inputHandle,
                                                      Snpe_UserBufferMap_Handle_t outputHandle);

/* Registers client memory-mapped buffers (ION / dma-buf / shared memory given by fd and
 * offset) once, so that later executions with user buffers at those addresses need no copy
 * into runtime memory. */
SNPE_API Snpe_ErrorCode_t Snpe_SNPE_RegisterUserMemoryMappedBuffers(Snpe_SNPE_Handle_t snpeHandle,
                                                                   Snpe_UserMemoryMap_Handle_t bufferMapHandle);
SNPE_API Snpe_ErrorCode_t Snpe_SNPE_DeregisterUserMemoryMappedBuffers(Snpe_SNPE_Handle_t snpeHandle,
                                                                     Snpe_StringList_Handle_t bufferNamesHandle);

/* ---- UserMemoryMap.h -------------------------------------------------------------------- */
SNPE_API Snpe_UserMemoryMap_Handle_t Snpe_UserMemoryMap_Create(void);
SNPE_API Snpe_ErrorCode_t Snpe_UserMemoryMap_Delete(Snpe_UserMemoryMap_Handle_t handle);
/* `address` + `offset` is the tensor's memory; `address` is the start of a block of
 * `totalAllocatedSize` bytes that `fd` maps from its offset 0. Several entries per name. */
SNPE_API Snpe_ErrorCode_t Snpe_UserMemoryMap_AddFdOffset(Snpe_UserMemoryMap_Handle_t handle, const char* name,
                                                        void* address, size_t totalAllocatedSize, int32_t fd,
                                                        uint64_t offset);
SNPE_API size_t Snpe_UserMemoryMap_Size(Snpe_UserMemoryMap_Handle_t handle);

/* ---- StringList.h ----------------------------------------------------------------------- */
SNPE_API Snpe_StringList_Handle_t Snpe_StringList_Create(void);
SNPE_API Snpe_ErrorCode_t Snpe_StringList_Append(Snpe_StringList_Handle_t stringListHandle, const char* string);
SNPE_API size_t Snpe_StringList_Size(Snpe_StringList_Handle_t stringListHandle);
SNPE_API const char* Snpe_StringList_At(Snpe_StringList_Handle_t stringListHandle, size_t idx);
SNPE_API Snpe_ErrorCode_t Snpe_StringList_Delete(Snpe_StringList_Handle_t stringListHandle);

/* ---- TensorShape.h ---------------------------------------------------------------------- */
SNPE_API Snpe_TensorShape_Handle_t Snpe_TensorShape_CreateDimsSize(const size_t* dims, size_t size);
SNPE_API Snpe_ErrorCode_t Snpe_TensorShape_Delete(Snpe_TensorShape_Handle_t tensorShapeHandle);

/* ---- IUserBuffer.h ---------------------------------------------------------------------- */
SNPE_API Snpe_UserBufferEncoding_Handle_t Snpe_UserBufferEncodingUnsigned8Bit_Create(void);
SNPE_API Snpe_ErrorCode_t Snpe_UserBufferEncodingUnsigned8Bit_Delete(
    Snpe_UserBufferEncoding_Handle_t userBufferEncodingHandle);
SNPE_API Snpe_ErrorCode_t Snpe_IUserBuffer_Delete(Snpe_IUserBuffer_Handle_t userBufferHandle);
SNPE_API int Snpe_IUserBuffer_SetBufferAddress(Snpe_IUserBuffer_Handle_t userBufferHandle, void* buffer);

/* ---- SNPEUtil.h (the 4th parameter is typed as in the SDK) ------------------------------ */
SNPE_API Snpe_IUserBuffer_Handle_t Snpe_Util_CreateUserBuffer(void* buffer, size_t bufSize,
                                                              Snpe_TensorShape_Handle_t stridesHandle,
                                                              Snpe_IUserBuffer_Handle_t userBufferEncodingHandle);
SNPE_API int Snpe_Util_IsRuntimeAvailable(Snpe_Runtime_t runtime);
SNPE_API Snpe_DlVersion_Handle_t Snpe_Util_GetLibraryVersion(void);

/* ---- DlVersion.h ------------------------------------------------------------------------ */
SNPE_API const char* Snpe_DlVersion_ToString(Snpe_DlVersion_Handle_t handle);
SNPE_API Snpe_ErrorCode_t Snpe_DlVersion_Delete(Snpe_DlVersion_Handle_t handle);

/* ---- UserBufferMap.h -------------------------------------------------------------------- */
SNPE_API Snpe_UserBufferMap_Handle_t Snpe_UserBufferMap_Create(void);
SNPE_API Snpe_ErrorCode_t Snpe_UserBufferMap_Add(Snpe_UserBufferMap_Handle_t handle, const char* name,
                                                Snpe_IUserBuffer_Handle_t bufferHandle);
SNPE_API Snpe_ErrorCode_t Snpe_UserBufferMap_Delete(Snpe_UserBufferMap_Handle_t handle);

#ifdef __cplusplus
}
#endif

#endif /* FRAMEBUS_SNPE_C_API_H */
